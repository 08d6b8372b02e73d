// doppel::model — reading DTDL JSON documents into Interfaces (syntax and per-element rules).
//
// This is the first of two passes. It checks everything that can be decided by looking at one
// Interface: contexts, terms, types, names, lengths, DTMI syntax, schema shapes, semantic units,
// per-set limits, and schema references *inside* the Interface. Rules that need other
// Interfaces (extends, components, inheritance, cross-document ids) are the resolver's.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/json.h"
#include "model/diagnostic.h"
#include "model/elements.h"

namespace doppel::model {

struct SourceDocument {
  std::string name;  // shown in diagnostics (a file path, "request body", ...)
  std::string text;  // UTF-8 JSON, with or without a BOM
};

struct ParseOptions {
  core::JsonLimits json_limits;
  // Called after each document is read: (documents done, total). For progress displays.
  std::function<void(std::size_t, std::size_t)> progress;
};

struct ParsedDocuments {
  // Every Interface read, top-level and inline (inline ones have parent_id set). An Interface
  // with errors may be missing or partial; check diagnostics before using any.
  std::vector<std::shared_ptr<Interface>> interfaces;
  Diagnostics diagnostics;
};

ParsedDocuments ParseDocuments(std::span<const SourceDocument> documents,
                               const ParseOptions& options = {});

}  // namespace doppel::model
