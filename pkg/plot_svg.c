/* plot_svg.c: the drift detector's statistics as a self-contained SVG chart (plot_svg.h). */
#include "plot_svg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define W 960.0
#define H 540.0
#define LEFT 70.0
#define RIGHT 250.0 /* room for the legend */
#define TOP 50.0
#define BOTTOM 60.0

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
#define NPALETTE (sizeof palette / sizeof palette[0])

struct frame {
  double xmax, ymax; /* data ranges: x in [0, xmax], y in [0, ymax] */
};

static double px(const struct frame *f, double x) {
  return LEFT + x / f->xmax * (W - LEFT - RIGHT);
}

static double py(const struct frame *f, double y) {
  return H - BOTTOM - y / f->ymax * (H - TOP - BOTTOM);
}

/* nice_step: 1, 2 or 5 times a power of ten, giving about 5 to 10 ticks over |range|. */
static double nice_step(double range) {
  double step = 1e-6;
  while (range / step > 10.0) {
    if (range / (step * 2) <= 10.0)
      return step * 2;
    if (range / (step * 5) <= 10.0)
      return step * 5;
    step *= 10;
  }
  return step;
}

/* put_escaped: |s| with XML's five special characters escaped. */
static void put_escaped(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default: fputc(*s, f);
    }
  }
}

static void axes(FILE *f, const struct frame *fr) {
  double xs = nice_step(fr->xmax), ys = nice_step(fr->ymax);

  fprintf(f, "<g font-size=\"11\" fill=\"#333\">\n");
  for (double x = 0; x <= fr->xmax + 1e-9; x += xs) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
            px(fr, x), py(fr, 0), px(fr, x), py(fr, fr->ymax));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", px(fr, x),
            py(fr, 0) + 16, x);
  }
  for (double y = 0; y <= fr->ymax + 1e-9; y += ys) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
            px(fr, 0), py(fr, y), px(fr, fr->xmax), py(fr, y));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", px(fr, 0) - 6,
            py(fr, y) + 4, y);
  }
  fprintf(f, "</g>\n");
  fprintf(f, "<path d=\"M%.1f %.1f V%.1f H%.1f\" fill=\"none\" stroke=\"#333\"/>\n", px(fr, 0),
          py(fr, fr->ymax), py(fr, 0), px(fr, fr->xmax));
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">request index "
             "(sequence)</text>\n",
          (px(fr, 0) + px(fr, fr->xmax)) / 2, H - 18);
  fprintf(f, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\" "
             "font-size=\"13\">CUSUM statistic (nats)</text>\n",
          (py(fr, 0) + py(fr, fr->ymax)) / 2);
}

static void vline(FILE *f, const struct frame *fr, double x, const char *color, const char *dash,
                  double label_y, const char *what, const char *who) {
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
             "stroke-width=\"1.5\" stroke-dasharray=\"%s\"/>\n",
          px(fr, x), py(fr, 0), px(fr, x), py(fr, fr->ymax), color, dash);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">%s ", px(fr, x) + 4,
          label_y, color, what);
  if (who)
    put_escaped(f, who);
  fprintf(f, " @ %.0f</text>\n", x);
}

static int write_body(FILE *f, const struct qm_plot_series *sr, size_t n, int64_t true_flip_at,
                      const char *true_provider) {
  struct frame fr = {1.0, 1.0};
  struct qm_drift_report rep;
  double threshold = 0.0, label_y;

  for (size_t i = 0; i < n; i++) {
    const uint64_t *seqs = sr[i].seqs;
    const double *vals = sr[i].values;
    size_t len = sr[i].n;
    rep = sr[i].report;
    threshold = rep.threshold;
    for (size_t k = 0; k < len; k++) {
      if ((double)seqs[k] > fr.xmax)
        fr.xmax = (double)seqs[k];
      if (vals[k] > fr.ymax)
        fr.ymax = vals[k];
    }
    if (rep.suspected && (double)rep.change_at > fr.xmax)
      fr.xmax = (double)rep.change_at;
  }
  if (true_flip_at >= 0 && (double)true_flip_at > fr.xmax)
    fr.xmax = (double)true_flip_at;
  if (threshold * 1.25 > fr.ymax)
    fr.ymax = threshold * 1.25;
  fr.ymax *= 1.05;

  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
             "<text x=\"%.1f\" y=\"26\" font-size=\"15\" font-weight=\"bold\">qmesh auditor: "
             "drift statistic per provider (inverted vs. as its peers)</text>\n",
          W, H, W, H, LEFT);
  axes(f, &fr);

  /* threshold */
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
             "stroke-width=\"1.5\" stroke-dasharray=\"8 4\"/>\n"
             "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#d62728\" "
             "text-anchor=\"end\">threshold %.2f</text>\n",
          px(&fr, 0), py(&fr, threshold), px(&fr, fr.xmax), py(&fr, threshold),
          px(&fr, fr.xmax) - 4, py(&fr, threshold) - 5, threshold);

  /* curves */
  for (size_t i = 0; i < n; i++) {
    const uint64_t *seqs = sr[i].seqs;
    const double *vals = sr[i].values;
    size_t len = sr[i].n;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.4\" points=\"",
            palette[i % NPALETTE]);
    for (size_t k = 0; k < len; k++)
      fprintf(f, "%s%.1f,%.1f", k ? " " : "", px(&fr, (double)seqs[k]), py(&fr, vals[k]));
    fprintf(f, "\"/>\n");
  }

  /* flips: the true one, then each suspected provider's estimate and alarm */
  label_y = TOP + 14;
  if (true_flip_at >= 0) {
    vline(f, &fr, (double)true_flip_at, "#000", "6 3", label_y, "true flip", true_provider);
    label_y += 14;
  }
  for (size_t i = 0; i < n; i++) {
    rep = sr[i].report;
    if (!rep.suspected)
      continue;
    vline(f, &fr, (double)rep.change_at, palette[i % NPALETTE], "2 3", label_y, "estimated",
          sr[i].id);
    label_y += 14;
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"#000\"/>\n",
            px(&fr, (double)rep.alarm_at), py(&fr, threshold), palette[i % NPALETTE]);
  }

  /* legend */
  fprintf(f, "<g font-size=\"12\">\n");
  for (size_t i = 0; i < n; i++) {
    double y = TOP + 10 + 36.0 * (double)i, x = W - RIGHT + 20;
    rep = sr[i].report;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"3\"/>\n<text x=\"%.1f\" y=\"%.1f\">",
            x, y, x + 22, y, palette[i % NPALETTE], x + 28, y + 4);
    put_escaped(f, sr[i].id);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">", x + 28,
            y + 18);
    if (rep.suspected)
      fprintf(f, "suspected: alarm %llu, change %llu",
              (unsigned long long)rep.alarm_at, (unsigned long long)rep.change_at);
    else
      fprintf(f, "not suspected (peak %.2f)", rep.peak);
    fprintf(f, "</text>\n");
  }
  {
    double y = TOP + 10 + 36.0 * (double)n, x = W - RIGHT + 20;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
               "stroke-dasharray=\"8 4\"/><text x=\"%.1f\" y=\"%.1f\">threshold</text>\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
               "stroke-dasharray=\"6 3\"/><text x=\"%.1f\" y=\"%.1f\">true flip</text>\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
               "stroke-dasharray=\"2 3\"/><text x=\"%.1f\" y=\"%.1f\">estimated change</text>\n"
               "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#555\"/><text x=\"%.1f\" "
               "y=\"%.1f\">alarm</text>\n",
            x, y, x + 22, y, x + 28, y + 4, x, y + 20, x + 22, y + 20, x + 28, y + 24, x,
            y + 40, x + 22, y + 40, x + 28, y + 44, x + 11, y + 60, x + 28, y + 64);
  }
  fprintf(f, "</g>\n</svg>\n");
  return ferror(f) ? -EIO : 0;
}

int qm_plot_svg_write_series(const char *path, const struct qm_plot_series *series, size_t n,
                             int64_t true_flip_at, const char *true_provider, struct qm_err *err) {
  char tmp[4096];
  FILE *f;
  int rc, len;

  if (!path || !*path || (n && !series))
    return qm_err_set(err, -EINVAL, "plot: bad arguments (path '%s', %zu providers)", path ? path : "(null)", n);
  for (size_t i = 0; i < n; i++)
    if (!series[i].id || (series[i].n && (!series[i].seqs || !series[i].values)))
      return qm_err_set(err, -EINVAL, "plot: provider %zu has no id or no points", i);
  len = snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (len < 0 || (size_t)len >= sizeof tmp)
    return qm_err_set(err, -ENAMETOOLONG, "plot: path too long: '%s'", path);
  f = fopen(tmp, "w");
  if (!f) {
    rc = -errno;
    return qm_err_set(err, rc, "plot: %s: %s", tmp, strerror(-rc));
  }
  rc = write_body(f, series, n, true_flip_at, true_provider);
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  if (rc) {
    remove(tmp);
    return qm_err_set(err, rc, "plot: writing %s: %s", tmp, strerror(-rc));
  }
  if (rename(tmp, path) != 0) {
    rc = -errno;
    remove(tmp);
    return qm_err_set(err, rc, "plot: renaming %s to %s: %s", tmp, path, strerror(-rc));
  }
  qm_err_clear(err);
  return 0;
}

int qm_plot_svg_write(const char *path, const struct qm_drift *d,
                      const char *const *provider_ids, size_t nproviders,
                      int64_t true_flip_at, const char *true_provider, struct qm_err *err) {
  if (!d || (nproviders && !provider_ids) || nproviders > qm_drift_nproviders(d) || nproviders > QM_PLOT_SERIES_MAX)
    return qm_err_set(err, -EINVAL, "plot: bad arguments (path '%s', %zu providers)", path ? path : "(null)",
                      nproviders);
  struct qm_plot_series series[QM_PLOT_SERIES_MAX];
  for (size_t i = 0; i < nproviders; i++) {
    series[i].id = provider_ids[i];
    series[i].n = qm_drift_trace(d, i, &series[i].seqs, &series[i].values);
    qm_drift_report(d, i, &series[i].report);
  }
  return qm_plot_svg_write_series(path, series, nproviders, true_flip_at, true_provider, err);
}
