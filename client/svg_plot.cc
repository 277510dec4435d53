// SVG drawing: axes with "nice" ticks (1, 2, 5 × 10^k), error bars with caps, a legend.
#include "client/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sweepd::client {
namespace {

constexpr double kWidth = 720, kHeight = 480;
constexpr double kLeft = 70, kRight = 190, kTop = 40, kBottom = 60;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

double NiceStep(double span, int ticks) {
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

struct Axis {
  double lo, hi, step;
  void Fit(double min, double max, bool include_zero) {
    if (include_zero) {
      min = std::min(min, 0.0);
      max = std::max(max, 0.0);
    }
    if (!(max > min)) {
      min -= 1;
      max += 1;
    }
    const double pad = (max - min) * 0.08;
    step = NiceStep(max - min + 2 * pad, 5);
    lo = std::floor((min - pad) / step) * step;
    hi = std::ceil((max + pad) / step) * step;
  }
};

std::string TickText(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return buf;
}

}  // namespace

std::string RenderSvg(const PlotSpec& spec) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& s : spec.series) {
    for (const auto& p : s.points) {
      xmin = std::min(xmin, p.x - p.x_err);
      xmax = std::max(xmax, p.x + p.x_err);
      ymin = std::min(ymin, p.y - p.y_err);
      ymax = std::max(ymax, p.y + p.y_err);
    }
  }
  if (!std::isfinite(xmin)) xmin = xmax = ymin = ymax = 0;
  Axis ax, ay;
  ax.Fit(xmin, xmax, spec.zero_lines);
  ay.Fit(ymin, ymax, spec.zero_lines);
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double v) { return kLeft + (v - ax.lo) / (ax.hi - ax.lo) * pw; };
  auto Y = [&](double v) { return kTop + ph - (v - ay.lo) / (ay.hi - ay.lo) * ph; };

  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth) + "\" height=\"" + Num(kHeight) +
       "\" viewBox=\"0 0 " + Num(kWidth) + " " + Num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + Num(kLeft + pw / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
       Escape(spec.title) + "</text>\n";
  // Grid and ticks.
  for (double v = ax.lo; v <= ax.hi + ax.step * 1e-9; v += ax.step) {
    o += "<line x1=\"" + Num(X(v)) + "\" y1=\"" + Num(kTop) + "\" x2=\"" + Num(X(v)) + "\" y2=\"" + Num(kTop + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + Num(X(v)) + "\" y=\"" + Num(kTop + ph + 16) + "\" text-anchor=\"middle\">" +
         TickText(v, ax.step) + "</text>\n";
  }
  for (double v = ay.lo; v <= ay.hi + ay.step * 1e-9; v += ay.step) {
    o += "<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(Y(v)) + "\" x2=\"" + Num(kLeft + pw) + "\" y2=\"" + Num(Y(v)) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + Num(kLeft - 6) + "\" y=\"" + Num(Y(v) + 4) + "\" text-anchor=\"end\">" +
         TickText(v, ay.step) + "</text>\n";
  }
  if (spec.zero_lines) {
    o += "<line x1=\"" + Num(X(0)) + "\" y1=\"" + Num(kTop) + "\" x2=\"" + Num(X(0)) + "\" y2=\"" + Num(kTop + ph) +
         "\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n";
    o += "<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(Y(0)) + "\" x2=\"" + Num(kLeft + pw) + "\" y2=\"" + Num(Y(0)) +
         "\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n";
  }
  o += "<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(kTop) + "\" width=\"" + Num(pw) + "\" height=\"" + Num(ph) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  o += "<text x=\"" + Num(kLeft + pw / 2) + "\" y=\"" + Num(kHeight - 18) + "\" text-anchor=\"middle\">" +
       Escape(spec.x_label) + "</text>\n";
  o += "<text transform=\"translate(18 " + Num(kTop + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       Escape(spec.y_label) + "</text>\n";

  for (size_t i = 0; i < spec.series.size(); ++i) {
    const PlotSeries& s = spec.series[i];
    const std::string color = kColors[i % (sizeof kColors / sizeof kColors[0])];
    o += "<g class=\"series\" stroke=\"" + color + "\" fill=\"" + color + "\">\n";
    if (s.connect && s.points.size() > 1) {
      std::vector<PlotPoint> pts = s.points;
      std::sort(pts.begin(), pts.end(), [](const PlotPoint& a, const PlotPoint& b) { return a.x < b.x; });
      std::string path;
      for (const auto& p : pts) path += (path.empty() ? "M" : " L") + Num(X(p.x)) + " " + Num(Y(p.y));
      o += "<path d=\"" + path + "\" fill=\"none\" stroke-width=\"1.5\"/>\n";
    }
    for (const auto& p : s.points) {
      if (p.y_err > 0) {
        o += "<line x1=\"" + Num(X(p.x)) + "\" y1=\"" + Num(Y(p.y - p.y_err)) + "\" x2=\"" + Num(X(p.x)) + "\" y2=\"" +
             Num(Y(p.y + p.y_err)) + "\"/>\n";
        for (double e : {p.y - p.y_err, p.y + p.y_err}) {
          o += "<line x1=\"" + Num(X(p.x) - 4) + "\" y1=\"" + Num(Y(e)) + "\" x2=\"" + Num(X(p.x) + 4) + "\" y2=\"" +
               Num(Y(e)) + "\"/>\n";
        }
      }
      if (p.x_err > 0) {
        o += "<line x1=\"" + Num(X(p.x - p.x_err)) + "\" y1=\"" + Num(Y(p.y)) + "\" x2=\"" + Num(X(p.x + p.x_err)) +
             "\" y2=\"" + Num(Y(p.y)) + "\"/>\n";
        for (double e : {p.x - p.x_err, p.x + p.x_err}) {
          o += "<line x1=\"" + Num(X(e)) + "\" y1=\"" + Num(Y(p.y) - 4) + "\" x2=\"" + Num(X(e)) + "\" y2=\"" +
               Num(Y(p.y) + 4) + "\"/>\n";
        }
      }
      o += "<circle cx=\"" + Num(X(p.x)) + "\" cy=\"" + Num(Y(p.y)) + "\" r=\"4\"/>\n";
      if (!p.label.empty()) {
        o += "<text x=\"" + Num(X(p.x) + 7) + "\" y=\"" + Num(Y(p.y) - 7) + "\" stroke=\"none\" font-size=\"10\">" +
             Escape(p.label) + "</text>\n";
      }
    }
    o += "</g>\n";
    const double ly = kTop + 14 + 18 * static_cast<double>(i);
    o += "<circle cx=\"" + Num(kLeft + pw + 16) + "\" cy=\"" + Num(ly - 4) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
    o += "<text x=\"" + Num(kLeft + pw + 26) + "\" y=\"" + Num(ly) + "\">" + Escape(s.name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace sweepd::client
