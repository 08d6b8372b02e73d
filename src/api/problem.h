// doppel::api — errors on the wire: RFC 7807 application/problem+json.
//
//   {"type": "urn:doppel:problem:<code>", "title": "<code>", "status": 404,
//    "code": "TWIN_NOT_FOUND", "detail": "no twin 'pump-7'", "pointer": "/temperature",
//    "instance": "/digitaltwins/pump-7", "errors": [{"code", "message", "pointer"}...]}
//
// `code` is stable (the same codes as core::Status); `errors` lists every violation when one
// request broke several rules.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "core/status.h"

namespace doppel::api {

// The HTTP status for an error code.
unsigned HttpStatusFor(std::string_view code);

boost::json::value ProblemJson(const core::Status& s, unsigned http_status,
                               std::string_view instance);

}  // namespace doppel::api
