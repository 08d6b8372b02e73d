// doppel::cli — subcommand registration. Each group adds its subcommands to the app; main()
// dispatches. Commands translate arguments into calls on the engine and print results; they
// hold no business logic.
#pragma once

#include <CLI/CLI.hpp>

namespace doppel::cli {

// Registers `doppel model check|show`. Sets *exit_code when a command runs.
void AddModelCommands(CLI::App& app, int* exit_code);

// Registers `doppel serve` and `doppel key create`.
void AddServerCommands(CLI::App& app, int* exit_code);

// Registers the clients of a running server: `doppel twin`, `doppel query`, `doppel import`,
// `doppel history export`, `doppel scenario put|run|compare`.
void AddClientCommands(CLI::App& app, int* exit_code);

// Registers `doppel plant` (the virtual plant, plant/plant.h).
void AddPlantCommand(CLI::App& app, int* exit_code);

// Registers `doppel sim fmu` (FMI co-simulation, sim/fmi/fmu.h).
void AddSimCommands(CLI::App& app, int* exit_code);

// Registers `doppel train rul` and `doppel predict rul` (analytics/rul/rul_model.h).
void AddRulCommands(CLI::App& app, int* exit_code);

// Registers `doppel replay cmapss` (a C-MAPSS engine fed to POST /write, cycle by cycle).
void AddReplayCommands(CLI::App& app, int* exit_code);

}  // namespace doppel::cli
