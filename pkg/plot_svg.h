/* plot_svg.h: the drift detector's statistics as a self-contained SVG chart. */
#ifndef QM_PLOT_SVG_H
#define QM_PLOT_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "drift.h"
#include "err.h"

/* qm_plot_svg_write: writes to |path| an SVG (no scripts, no external resources) with each
 * provider's detection statistic over the request index (qm_drift_trace), the alarm
 * threshold, a dashed vertical line at |true_flip_at| (-1: unknown, not drawn) labelled with
 * |true_provider| (NULL: unlabelled), a dotted vertical line at each suspected provider's
 * estimated change, axes with ticks and labels, and a legend. |provider_ids| (borrowed,
 * |nproviders| entries, at most qm_drift_nproviders(d)) names the curves; ids are XML-escaped.
 * The file is written to "<path>.tmp" and renamed, so a reader never sees half a chart.
 * Returns 0, or -EINVAL (bad arguments) / a negative errno from the file system with |err|
 * naming the path. */
#define QM_PLOT_SERIES_MAX 64

/* One provider's curve, from a live detector or from the auditor's DriftTrace reply. */
struct qm_plot_series {
  const char *id;
  const uint64_t *seqs;
  const double *values;
  size_t n;
  struct qm_drift_report report;
};

/* qm_plot_svg_write_series: as qm_plot_svg_write, from |n| series (borrowed). */
int qm_plot_svg_write_series(const char *path, const struct qm_plot_series *series, size_t n,
                             int64_t true_flip_at, const char *true_provider, struct qm_err *err);

int qm_plot_svg_write(const char *path, const struct qm_drift *d,
                      const char *const *provider_ids, size_t nproviders,
                      int64_t true_flip_at, const char *true_provider, struct qm_err *err);

#endif
