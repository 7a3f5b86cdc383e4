#include "internal/names.h"

namespace gojodb {

Status ValidateName(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Status::InvalidArgument(std::string(what) + " name must be 1 to 128 characters");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (i > 0 && (c == '_' || c == '-' || c == '.'));
    if (!ok) {
      return Status::InvalidArgument("invalid " + std::string(what) + " name '" +
                                     std::string(name) +
                                     "': use letters, digits, '_', '-' and '.', starting "
                                     "with a letter or digit");
    }
  }
  return Status::OK();
}

}  // namespace gojodb
