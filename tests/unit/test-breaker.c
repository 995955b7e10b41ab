/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder: being written */
#include <stdio.h>
#include "test-util.h"
int main(void) { fprintf(stderr, "not written yet\n"); return TEST_SKIP; }
