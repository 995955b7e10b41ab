/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sorting a large array on worker threads (par_run()). */
#pragma once

#include <stddef.h>

/**
 * par_sort() - qsort() on @workers threads: chunks sorted side by side, then
 * merged. For a @cmp that orders every pair of distinct elements the result
 * is qsort()'s.
 * @base: a malloc()ed array; the merge writes a new one of @n elements and
 *   frees the old one, so *@base may change (no copy back).
 *
 * Return: 0, or -ENOMEM (no buffer for the merge; *@base is then sorted in
 * place by qsort() on this thread, as a fallback).
 */
int par_sort(void **base, size_t n, size_t size, int (*cmp)(const void *, const void *), unsigned workers);
