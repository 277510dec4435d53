// Checks of a size option against a layer, shared by the block-structured methods' counts.
#pragma once

#include <string>

#include "common/param_count.h"
#include "common/status.h"

namespace sweepd::methods {

// Ok when `block` divides `dim`; else an error naming the option, the layer and what to pick.
inline Status Divides(int64_t block, int64_t dim, const std::string& what, const LinearShape& shape) {
  if (block <= 0 || dim % block != 0) {
    return Status::InvalidArgument(what + " " + std::to_string(block) + " does not divide d_in " +
                                   std::to_string(dim) + " of layer '" + shape.name + "'; pick a divisor of " +
                                   std::to_string(dim));
  }
  return Status::Ok();
}

}  // namespace sweepd::methods
