// A stable 64-bit fingerprint (FNV-1a) of a request's fields, so that a request id used
// again for a different request is detected. Every field is length-prefixed, so no two
// different field lists collide by concatenation. The standalone store and the gateway
// compute it the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gojodb {

class Fingerprint {
 public:
  void Add(std::string_view s) {
    AddRaw(std::to_string(s.size()));
    AddRaw(s);
  }
  void Add(uint64_t v) { Add(std::string_view(std::to_string(v))); }
  uint64_t value() const { return h_; }

 private:
  void AddRaw(std::string_view s) {
    for (unsigned char c : s) h_ = (h_ ^ c) * 1099511628211ull;
    h_ = (h_ ^ 0xff) * 1099511628211ull;
  }
  uint64_t h_ = 14695981039346656037ull;
};

}  // namespace gojodb
