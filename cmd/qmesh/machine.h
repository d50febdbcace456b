/* machine.h: what `qmesh bench` knows about the machine it runs on, from /proc: CPU time and
 * peak memory of a process, the CPU model and load, where the CPUs' time went (busy, idle,
 * taken by the hypervisor) and how late a sleeping thread wakes up. */
#ifndef QM_BENCH_MACHINE_H
#define QM_BENCH_MACHINE_H

#include <stdint.h>
#include <sys/types.h>

struct qm_latency;

struct usage {
  double cpu_s;    /* utime + stime */
  uint64_t hwm_kb; /* VmHWM: peak resident set */
  int ok;
};
/* read_usage: CPU seconds and peak RSS of |pid| (0: this process); ok = 0 when unreadable. */
struct usage read_usage(pid_t pid);

struct machine {
  long nproc;
  char model[128];
  double load[3];
};
void read_loadavg(double load[3]);
void read_machine(struct machine *m);

/* The "cpu" line of /proc/stat, in clock ticks, summed over every CPU. */
struct cpu_times {
  uint64_t busy;  /* user + nice + system + irq + softirq */
  uint64_t idle;  /* idle + iowait */
  uint64_t steal; /* runnable but not running: the hypervisor ran something else */
  int ok;
};
struct cpu_times read_cpu_times(void);
/* cpu_share: |part| of the time between |a| and |b| in percent (busy, idle or steal). */
double cpu_share(const struct cpu_times *a, const struct cpu_times *b, char part);

/* wake_probe: |count| sleeps of |period_us| each; records how late each one woke up into
 * |late| and returns how many woke more than 1 ms late. This is the floor under every hop
 * of the mesh: each one is a sleeping process woken by a message. */
uint64_t wake_probe(unsigned count, unsigned period_us, struct qm_latency *late);

#endif
