// The kernel tables of every instruction set this CPU can run, for tests that hold each
// SIMD path to the scalar reference.
#pragma once

#include <vector>

#include "attnscope/quant.h"
#include "quant/q8_impl.h"

namespace attnscope::quant::testing {

inline std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) out.push_back(isa);
  }
  return out;
}

inline const detail::IsaKernels* table(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return &detail::scalar_kernels();
    case Isa::kAvx2:
      return detail::avx2_kernels();
    case Isa::kAvx512:
      return detail::avx512_kernels();
  }
  return nullptr;
}

}  // namespace attnscope::quant::testing
