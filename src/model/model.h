// doppel::model — DTDL v2/v3 models: the component's manual.
//
// What it does
//   Reads DTDL documents (ParseDocuments), resolves batches against each other and the models
//   already known (ResolveBatch), keeps the known models (ModelRepository), and checks twin data
//   against them (ValidateElementValue and friends). Every problem is reported, each with a
//   stable code (docs/dtdl-errors.md), the document, a JSON pointer and a message.
//
// How to use it
//   ModelRepository repo;
//   auto r = repo.Add(documents);             // all-or-nothing
//   if (!r.ok()) for (auto& d : r.diagnostics) puts(FormatDiagnostic(d).c_str());
//   auto pump = repo.Resolve("dtmi:com:example:Pump;1");
//   auto errors = ValidateElementValue(**pump, "temperature", json::value(21.5));
//
// Layers, in order of use: dtmi.h (identifiers) → elements.h (the object model) → parser.h
// (per-Interface rules) → resolver.h (cross-Interface rules, the resolved view) →
// model_repository.h (the set of models) → value_validator.h (data against models) →
// model_json.h (JSON views for the API and CLI).
#pragma once

#include "model/diagnostic.h"
#include "model/dtmi.h"
#include "model/elements.h"
#include "model/model_json.h"
#include "model/model_repository.h"
#include "model/parser.h"
#include "model/resolver.h"
#include "model/semantic_units.h"
#include "model/value_validator.h"
