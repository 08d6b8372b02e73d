// doppel — the command-line entry point.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"doppel: a digital twin engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "doppel 0.1.0");
  int exit_code = 0;
  doppel::cli::AddModelCommands(app, &exit_code);
  doppel::cli::AddServerCommands(app, &exit_code);
  doppel::cli::AddClientCommands(app, &exit_code);
  doppel::cli::AddPlantCommand(app, &exit_code);
  doppel::cli::AddSimCommands(app, &exit_code);
  doppel::cli::AddRulCommands(app, &exit_code);
  doppel::cli::AddReplayCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors: 2
  }
  return exit_code;
}
