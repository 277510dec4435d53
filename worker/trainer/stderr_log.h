// The trainer's lines for people: one "sweep-train: ..." line on stderr each (the worker
// keeps them in attempt-<n>.stderr.log and sends the tail with the outcome).
#pragma once

#include <iostream>
#include <string>

namespace sweepd::trainer {

inline void LogLine(const std::string& line) { std::cerr << "sweep-train: " << line << std::endl; }

}  // namespace sweepd::trainer
