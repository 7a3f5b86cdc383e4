// Decoders of JSON request bodies into core/kv requests. Strict: malformed JSON,
// wrong types and unknown fields are INVALID_ARGUMENT naming the offending field.
// Pure and fuzzed.
#pragma once

#include <string_view>

#include "core/kv/kv_service.h"

namespace gojodb::http {

// {"ops":[{"op":"put"|"delete","collection":…,"key"|"key_base64":…,
//          "value"|"value_base64":…,"if_version":V}], "request_id":…}
Result<kv::BatchRequest> DecodeBatchBody(std::string_view body);

// {"name":…,"schema":{…},"indexes":[{"name":…,"fields":[…],"unique":false}]}
Result<kv::CollectionSpec> DecodeCollectionBody(std::string_view body);

}  // namespace gojodb::http
