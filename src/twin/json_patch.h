// doppel::twin — JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) on boost::json.
//
// Semantics (exactly the RFCs unless noted):
//  * A patch is an array of operation objects, applied in order. Members other than op, path,
//    value and from are ignored (RFC 6902 §4). "value" must be present for add/replace/test
//    (null is a value); "from" for move/copy.
//  * Application is atomic: the operations run on a copy, so on any failure the caller's document
//    is untouched and nothing is half-applied. The whole patch is checked for well-formedness
//    (members, types, pointer syntax) before any operation runs, so a malformed operation is
//    reported even when an earlier one would fail against the document.
//  * Array tokens are "0" or a digit string without leading zeros; "-" names the slot after the
//    last element and is valid only as the final token of an add's path (append). add accepts
//    index == size; remove/replace/test/from need an existing element.
//  * add on an existing object member replaces it; remove/replace need the target to exist; the
//    path "" is the whole document (add/replace swap it, remove leaves null, as the community
//    test suite expects). move from a location into one of its own children is an error; move
//    to the same location is a no-op once "from" is known to exist.
//  * test uses JSON equality: object member order is irrelevant, numbers compare by value
//    (1 == 1.0 == 1e0, exactly — no rounding), strings compare code unit by code unit.
//  * Duplicate member names inside an operation never reach this code: boost::json keeps the last
//    one when parsing, so RFC 6902 A.13 is applied as a "remove".
//
// Error codes (Status::pointer() points into the *patch*: "/3", "/3/path", "/3/from"):
//   PATCH_NOT_ARRAY            the patch is not a JSON array                     (pointer "")
//   PATCH_TOO_MANY_OPERATIONS  more than PatchLimits::max_ops operations         (pointer "")
//   PATCH_INVALID_OPERATION    not an object, unknown op, member missing or of the wrong type,
//                              move into its own child                      (/3, /3/op, ...)
//   PATCH_INVALID_POINTER      path/from is not RFC 6901 syntax          (/3/path, /3/from)
//   PATCH_PATH_NOT_FOUND       the location (or add's parent) does not exist in the document,
//                              including array tokens that are not valid indices ("01", "1e0")
//   PATCH_TEST_FAILED          a test operation's value differs                     (/3/value)
// Messages name the operation, e.g. "operation 2 (replace /temperature): no member
// 'temperature' in the document".
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::twin {

struct PatchLimits {
  std::size_t max_ops = 1000;
};

// Splits an RFC 6901 pointer into unescaped reference tokens ("~1" -> '/', "~0" -> '~'). ""
// (the whole document) gives no tokens; "/" gives one empty token. Error code INVALID_POINTER
// for a non-empty pointer without a leading '/', or '~' not followed by '0' or '1'.
core::Result<std::vector<std::string>> ParsePointer(std::string_view pointer);

// Applies `patch` to a copy of `doc` and returns the result; see the top of this file.
core::Result<boost::json::value> ApplyJsonPatch(const boost::json::value& doc,
                                                const boost::json::value& patch,
                                                const PatchLimits& limits = {});

// Each operation's "path" in order, plus "from" right after it for move (the one operation that
// also changes its source). Entries without a string "path" are skipped; meant for a patch that
// ApplyJsonPatch accepted. test operations are included: they name a path but change nothing.
std::vector<std::string> TouchedPaths(const boost::json::value& patch);

}  // namespace doppel::twin
