/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl run HELPER: ask a helper to run now, through its request dir. */
#pragma once

/* `healctl run disk-reclaim [--mount M]`. Returns an exit code (CTL_EXIT_*). */
int verb_run(int argc, char *argv[]);
