/* machine.c: see machine.h. */
#include "machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"
#include "rpc.h"

struct usage read_usage(pid_t pid) {
  struct usage u = {0};
  char path[64], buf[2048];
  if (pid) snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  else snprintf(path, sizeof path, "/proc/self/stat");
  FILE *f = fopen(path, "r");
  if (!f) return u;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* comm may hold spaces and parentheses: fields resume after the last ')'. utime and
   * stime are fields 14 and 15, the 12th and 13th after it. */
  char *p = strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return u;
  long tck = sysconf(_SC_CLK_TCK);
  u.cpu_s = (double)(utime + stime) / (double)(tck > 0 ? tck : 100);
  if (pid) snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  else snprintf(path, sizeof path, "/proc/self/status");
  f = fopen(path, "r");
  while (f && fgets(buf, sizeof buf, f)) {
    unsigned long long kb;
    if (sscanf(buf, "VmHWM: %llu kB", &kb) == 1) u.hwm_kb = kb;
  }
  if (f) fclose(f);
  u.ok = 1;
  return u;
}

void read_loadavg(double load[3]) {
  FILE *f = fopen("/proc/loadavg", "r");
  load[0] = load[1] = load[2] = -1;
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = load[1] = load[2] = -1;
    fclose(f);
  }
}

void read_machine(struct machine *m) {
  m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
  snprintf(m->model, sizeof m->model, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) != 0 || !colon) continue;
    colon++;
    while (*colon == ' ' || *colon == '\t') colon++;
    colon[strcspn(colon, "\n")] = '\0';
    snprintf(m->model, sizeof m->model, "%s", colon);
    break;
  }
  if (f) fclose(f);
  read_loadavg(m->load);
}

struct cpu_times read_cpu_times(void) {
  struct cpu_times t = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return t;
  unsigned long long v[8] = {0}; /* user nice system idle iowait irq softirq steal */
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                 &v[7]);
  fclose(f);
  if (n < 4) return t; /* steal and the rest are 0 on kernels that do not count them */
  t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
  t.idle = v[3] + v[4];
  t.steal = v[7];
  t.ok = 1;
  return t;
}

double cpu_share(const struct cpu_times *a, const struct cpu_times *b, char part) {
  if (!a->ok || !b->ok) return -1;
  uint64_t total = (b->busy - a->busy) + (b->idle - a->idle) + (b->steal - a->steal);
  uint64_t x = part == 'b' ? b->busy - a->busy : part == 'i' ? b->idle - a->idle : b->steal - a->steal;
  return total ? 100.0 * (double)x / (double)total : 0;
}

uint64_t wake_probe(unsigned count, unsigned period_us, struct qm_latency *late) {
  uint64_t over = 0;
  struct timespec d = {.tv_sec = period_us / 1000000, .tv_nsec = (long)(period_us % 1000000) * 1000};
  for (unsigned i = 0; i < count; i++) {
    int64_t t0 = qm_mono_ns();
    while (nanosleep(&d, NULL) != 0 && errno == EINTR) {
    }
    int64_t lag = qm_mono_ns() - t0 - (int64_t)period_us * 1000;
    qm_latency_record(late, lag > 0 ? lag : 0);
    if (lag > 1000000) over++;
  }
  return over;
}
