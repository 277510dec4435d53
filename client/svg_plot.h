// SvgPlot: a small scatter/line chart with error bars written as SVG text, for
// `sweepctl plot` (the plasticity/stability plane, a metric against a swept setting).
#pragma once

#include <string>
#include <vector>

namespace sweepd::client {

struct PlotPoint {
  double x = 0, y = 0;
  double x_err = 0, y_err = 0;  // half-length of the error bar (one sample std); 0: none
  std::string label;            // written beside the point; empty: none
};

struct PlotSeries {
  std::string name;  // legend entry
  std::vector<PlotPoint> points;
  bool connect = false;  // draw a line through the points in x order
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  bool zero_lines = false;  // dashed lines at x = 0 and y = 0 (no change from the base model)
};

std::string RenderSvg(const PlotSpec& spec);

}  // namespace sweepd::client
