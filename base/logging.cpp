#include "logging.hpp"

#include <cstdlib>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace rill::detail {

namespace {

spdlog::level::level_enum level_from_env() {
  const char* env = std::getenv("RILL_LOG");
  const std::string_view v = env == nullptr ? "warn" : env;
  if (v == "trace") return spdlog::level::trace;
  if (v == "debug") return spdlog::level::debug;
  if (v == "info") return spdlog::level::info;
  if (v == "error") return spdlog::level::err;
  if (v == "off") return spdlog::level::off;
  return spdlog::level::warn;
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = spdlog::get("rill");
  if (logger == nullptr) {
    logger = spdlog::stderr_color_mt("rill");
    logger->set_pattern("[%H:%M:%S.%e] [rill] [%l] %v");
  }
  logger->set_level(level_from_env());
  return logger;
}

}  // namespace

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = make_logger();
  return *logger;
}

}  // namespace rill::detail
