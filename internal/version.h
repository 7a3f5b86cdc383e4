#pragma once

namespace gojodb {
inline constexpr const char* kVersion = "0.1.0";
}
