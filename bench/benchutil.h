/*
 * benchutil.h -- helpers every benchmark uses: clocks, environment knobs,
 * scratch directories, medians.  Benchmarks report; they never gate.
 */
#ifndef QT_BENCHUTIL_H
#define QT_BENCHUTIL_H

#include <stdint.h>

/* Monotonic wall clock and this process's CPU time (user + system), s. */
double qt_bench_now_s(void);
double qt_bench_cpu_s(void);

/* A positive integer from the environment, or def. */
uint32_t qt_bench_env_u32(const char *name, uint32_t def);

/* Remove a directory tree (scratch data of a run); errors are ignored. */
void qt_bench_rm_rf(const char *dir);

/* Median of v[0..n) (sorts v in place); 0 for n == 0. */
double qt_bench_median(double *v, uint32_t n);

#endif
