// Rotary position embedding for the step: the angles of a row depend only on
// its position, so they are computed once per row and step (with exactly the
// reference's math, see ref::rope) and reused by every layer.
#pragma once

#include <cstdint>

#include "kernels/reference_ops.h"

namespace chorus {

// cos[i], sin[i] of the rotation of pair i < rope_dim / 2 at position pos.
void rope_angles(int pos, const ref::RopeParams& p, float* cos, float* sin);

// Rotates pairs (2i, 2i+1), 2i < rope_dim, of each of n_heads heads of vec
// (head h at vec + h * head_dim) by the angles from rope_angles.
void rope_rotate(float* vec, int n_heads, int head_dim, int rope_dim, const float* cos,
                 const float* sin);

}  // namespace chorus
