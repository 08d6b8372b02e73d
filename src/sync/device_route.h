// doppel::sync — the outbound members of a mapping: where desired values and commands for the
// mapping's twins are published (device_link.h uses them; mapping.h parses them).
//
//   "desired":  {"topic": "plant/{line}/{machine}/desired",      required
//                "ackTopic": "plant/{line}/{machine}/ack",       optional (without it only a
//                                                                reported value settles)
//                "timeoutMs": 30000}                             optional, 1..86400000
//   "commands": {"topic": "plant/{line}/{machine}/commands/{command}",   required
//                "timeoutMs": 10000}                             optional, 1..86400000
//
// Placeholders `{name}` name captures of the mapping's topic pattern; the commands topic may also
// use `{command}` (the command name; "<component>*<name>" for a command of a component, the IoT
// Plug and Play convention). Topics are MQTT topic names once filled (no `+` or `#`). A
// placeholder of `ackTopic` must be a whole level (the subscription filter has `+` there).
// Problems are reported like every other mapping problem (MAPPING_INVALID for shapes and unknown
// members, MAPPING_TEMPLATE for an unknown placeholder, MAPPING_TOPIC for wildcards), with a
// pointer such as "/desired/ackTopic".
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::sync {

class TopicPattern;

using CaptureValues = std::map<std::string, std::string, std::less<>>;

// Text with `{name}` placeholders.
class TopicTemplate {
 public:
  // Placeholders must be in `names`; problems go to *problems with `pointer`.
  static TopicTemplate Parse(std::string_view text, const std::vector<std::string>& names,
                             bool whole_levels, const std::string& pointer,
                             std::vector<core::Status>* problems);

  const std::string& text() const { return text_; }
  // The placeholder names, in order (repeats possible).
  std::vector<std::string> names() const;
  // The text with every placeholder filled. Error: the name of the first placeholder that
  // `values` lacks (as the status message; code DEVICE_NO_ROUTE).
  core::Result<std::string> Fill(const CaptureValues& values) const;
  // The text with every placeholder as `+` (an MQTT subscription filter).
  std::string Filter() const;
  // Reverse: the values of the placeholders that make the template read `text`, or nullopt.
  // Used on the twin template ("m-{machine}" against "m-7" gives machine=7).
  std::optional<CaptureValues> Match(std::string_view text) const;

 private:
  struct Part {
    bool placeholder = false;
    std::string text;  // literal, or the placeholder name
  };
  std::string text_;
  std::vector<Part> parts_;
};

struct DesiredRoute {
  TopicTemplate topic;
  std::optional<TopicTemplate> ack_topic;
  std::shared_ptr<const TopicPattern> ack_pattern;  // ack_topic's filter, compiled
  std::chrono::milliseconds timeout{30000};
};

struct CommandRoute {
  TopicTemplate topic;
  std::chrono::milliseconds timeout{10000};
};

struct OutboundRoutes {
  std::optional<DesiredRoute> desired;
  std::optional<CommandRoute> commands;
  // The mapping's twin template (only {capture} placeholders; a {tag:..} makes it unusable for
  // reverse matching: nullopt).
  std::optional<TopicTemplate> twin;
};

// Parses the `desired` and `commands` members of mapping document `o` (null when it has
// neither). `topic` is the mapping's compiled pattern (null if it did not compile: placeholders
// are then not checked).
std::shared_ptr<const OutboundRoutes> ParseOutboundRoutes(const boost::json::object& o,
                                                          const TopicPattern* topic,
                                                          std::vector<core::Status>* problems);

}  // namespace doppel::sync
