// Names users give to things (collections, tenants, ...): one rule everywhere.
#pragma once

#include <string_view>

#include "internal/status.h"

namespace gojodb {

// 1 to 128 characters: letters, digits, '_', '-' and '.', starting with a letter or a
// digit. INVALID_ARGUMENT otherwise, naming `what` ("collection", "tenant").
Status ValidateName(std::string_view what, std::string_view name);

}  // namespace gojodb
