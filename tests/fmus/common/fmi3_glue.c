/* FMI 3.0 co-simulation interface of a test model (model.h). Behaves like a careful real FMU:
 * checks the instantiationToken, the value reference types, when variables may be set, and the
 * communication point; reports errors through logMessage. Event mode, early return, clocks,
 * arrays and FMU state are not supported (and not declared in the model descriptions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "sim/fmi/fmi3_api.h"

#ifndef MODEL_GUID
#error "MODEL_GUID must be defined"
#endif

typedef struct {
  fmi3InstanceEnvironment environment;
  fmi3LogMessageCallback log_message;
  bool logging_on;
  bool terminated;
} Fmi3Glue;

static void* glue_alloc(ModelInstance* m, size_t n) {
  (void)m;
  return calloc(1, n);
}
static void glue_dealloc(ModelInstance* m, void* p) {
  (void)m;
  free(p);
}
static void glue_log(ModelInstance* m, LogLevel level, const char* category, const char* msg) {
  Fmi3Glue* g = (Fmi3Glue*)m->glue;
  if (g->log_message == NULL || (!g->logging_on && level < LOG_WARNING)) return;
  g->log_message(g->environment, (fmi3Status)level, category, msg);
}

const char* fmi3GetVersion(void) { return "3.0"; }

fmi3Status fmi3SetDebugLogging(fmi3Instance instance, fmi3Boolean loggingOn, size_t nCategories,
                               const fmi3String categories[]) {
  ModelInstance* m = (ModelInstance*)instance;
  (void)nCategories;
  (void)categories;
  ((Fmi3Glue*)m->glue)->logging_on = loggingOn;
  return fmi3OK;
}

fmi3Instance fmi3InstantiateModelExchange(fmi3String instanceName, fmi3String instantiationToken,
                                          fmi3String resourcePath, fmi3Boolean visible,
                                          fmi3Boolean loggingOn,
                                          fmi3InstanceEnvironment instanceEnvironment,
                                          fmi3LogMessageCallback logMessage) {
  (void)instanceName;
  (void)instantiationToken;
  (void)resourcePath;
  (void)visible;
  (void)loggingOn;
  if (logMessage != NULL) {
    logMessage(instanceEnvironment, fmi3Error, "logStatusError",
               "this FMU supports co-simulation only");
  }
  return NULL;
}

fmi3Instance fmi3InstantiateCoSimulation(
    fmi3String instanceName, fmi3String instantiationToken, fmi3String resourcePath,
    fmi3Boolean visible, fmi3Boolean loggingOn, fmi3Boolean eventModeUsed,
    fmi3Boolean earlyReturnAllowed, const fmi3ValueReference requiredIntermediateVariables[],
    size_t nRequiredIntermediateVariables, fmi3InstanceEnvironment instanceEnvironment,
    fmi3LogMessageCallback logMessage, fmi3IntermediateUpdateCallback intermediateUpdate) {
  Fmi3Glue* g;
  ModelInstance* m;
  (void)resourcePath;
  (void)visible;
  (void)earlyReturnAllowed;
  (void)requiredIntermediateVariables;
  (void)nRequiredIntermediateVariables;
  (void)intermediateUpdate;
  if (instanceName == NULL || instanceName[0] == '\0') return NULL;
  if (instantiationToken == NULL || strcmp(instantiationToken, MODEL_GUID) != 0) {
    if (logMessage != NULL) {
      char message[256];
      snprintf(message, sizeof message, "wrong instantiationToken %s, expected %s",
               instantiationToken ? instantiationToken : "(null)", MODEL_GUID);
      logMessage(instanceEnvironment, fmi3Error, "logStatusError", message);
    }
    return NULL;
  }
  if (eventModeUsed) {
    if (logMessage != NULL) {
      logMessage(instanceEnvironment, fmi3Error, "logStatusError",
                 "event mode is not supported (hasEventMode=false)");
    }
    return NULL;
  }
  g = (Fmi3Glue*)calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->environment = instanceEnvironment;
  g->log_message = logMessage;
  g->logging_on = loggingOn;
  m = instance_new(instanceName, g, glue_alloc, glue_dealloc, glue_log);
  if (m == NULL) free(g);
  return m;
}

fmi3Instance fmi3InstantiateScheduledExecution(fmi3String instanceName,
                                               fmi3String instantiationToken,
                                               fmi3String resourcePath, fmi3Boolean visible,
                                               fmi3Boolean loggingOn,
                                               fmi3InstanceEnvironment instanceEnvironment,
                                               fmi3LogMessageCallback logMessage, void* clockUpdate,
                                               void* lockPreemption, void* unlockPreemption) {
  (void)clockUpdate;
  (void)lockPreemption;
  (void)unlockPreemption;
  return fmi3InstantiateModelExchange(instanceName, instantiationToken, resourcePath, visible,
                                      loggingOn, instanceEnvironment, logMessage);
}

void fmi3FreeInstance(fmi3Instance instance) {
  ModelInstance* m = (ModelInstance*)instance;
  void* g;
  if (m == NULL) return;
  g = m->glue;
  instance_free(m);
  free(g);
}

fmi3Status fmi3EnterInitializationMode(fmi3Instance instance, fmi3Boolean toleranceDefined,
                                       fmi3Float64 tolerance, fmi3Float64 startTime,
                                       fmi3Boolean stopTimeDefined, fmi3Float64 stopTime) {
  ModelInstance* m = (ModelInstance*)instance;
  (void)toleranceDefined;
  (void)tolerance;
  if (stopTimeDefined && stopTime < startTime) {
    model_logf(m, LOG_ERROR, "logStatusError", "stop time %g before start time %g", stopTime,
               startTime);
    return fmi3Error;
  }
  m->time = startTime;
  return fmi3OK;
}

fmi3Status fmi3ExitInitializationMode(fmi3Instance instance) {
  ModelInstance* m = (ModelInstance*)instance;
  m->initialized = true;
  model_calculate(m);
  return fmi3OK;
}

fmi3Status fmi3EnterEventMode(fmi3Instance instance) {
  (void)instance;
  return fmi3Error;
}

fmi3Status fmi3EnterStepMode(fmi3Instance instance) {
  (void)instance;
  return fmi3Error;
}

fmi3Status fmi3Terminate(fmi3Instance instance) {
  (void)instance;
  return fmi3OK;
}

fmi3Status fmi3Reset(fmi3Instance instance) {
  ModelInstance* m = (ModelInstance*)instance;
  m->initialized = false;
  m->time = 0;
  ((Fmi3Glue*)m->glue)->terminated = false;
  model_start(m);
  return fmi3OK;
}

/* One getter/setter pair per FMI 3 type; `field` is the slot member, `T` the C type. */
#define ACCESSORS(Name, T, field, ...)                                                          \
  fmi3Status fmi3Get##Name(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,    \
                           T values[], size_t nValues) {                                        \
    static const VarType types[] = {__VA_ARGS__};                                               \
    ModelInstance* m = (ModelInstance*)instance;                                                \
    size_t i;                                                                                   \
    if (nValues != nvr) return fmi3Error; /* scalars only */                                    \
    for (i = 0; i < nvr; ++i) {                                                                 \
      if (!instance_check_vr(m, "fmi3Get" #Name, vr[i], types, sizeof types / sizeof *types))   \
        return fmi3Error;                                                                       \
    }                                                                                           \
    model_calculate(m);                                                                         \
    for (i = 0; i < nvr; ++i) values[i] = (T)m->slots[vr[i]].field;                             \
    return fmi3OK;                                                                              \
  }                                                                                             \
  fmi3Status fmi3Set##Name(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,    \
                           const T values[], size_t nValues) {                                  \
    static const VarType types[] = {__VA_ARGS__};                                               \
    ModelInstance* m = (ModelInstance*)instance;                                                \
    size_t i;                                                                                   \
    if (nValues != nvr) return fmi3Error;                                                       \
    for (i = 0; i < nvr; ++i) {                                                                 \
      if (!instance_check_vr(m, "fmi3Set" #Name, vr[i], types, sizeof types / sizeof *types) || \
          !instance_check_settable(m, "fmi3Set" #Name, vr[i]))                                  \
        return fmi3Error;                                                                       \
    }                                                                                           \
    for (i = 0; i < nvr; ++i) m->slots[vr[i]].field = values[i];                                \
    return fmi3OK;                                                                              \
  }

ACCESSORS(Float32, fmi3Float32, r, VT_FLOAT32)
ACCESSORS(Float64, fmi3Float64, r, VT_FLOAT64)
ACCESSORS(Int8, fmi3Int8, i, VT_INT8)
ACCESSORS(UInt8, fmi3UInt8, i, VT_UINT8)
ACCESSORS(Int16, fmi3Int16, i, VT_INT16)
ACCESSORS(UInt16, fmi3UInt16, i, VT_UINT16)
ACCESSORS(Int32, fmi3Int32, i, VT_INT32)
ACCESSORS(UInt32, fmi3UInt32, i, VT_UINT32)
ACCESSORS(Int64, fmi3Int64, i, VT_INT64, VT_ENUMERATION)
ACCESSORS(UInt64, fmi3UInt64, i, VT_UINT64)
ACCESSORS(Boolean, fmi3Boolean, b, VT_BOOLEAN)
#undef ACCESSORS

fmi3Status fmi3GetString(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,
                         fmi3String values[], size_t nValues) {
  static const VarType types[] = {VT_STRING};
  ModelInstance* m = (ModelInstance*)instance;
  size_t i;
  if (nValues != nvr) return fmi3Error;
  for (i = 0; i < nvr; ++i) {
    if (!instance_check_vr(m, "fmi3GetString", vr[i], types, 1)) return fmi3Error;
  }
  model_calculate(m);
  for (i = 0; i < nvr; ++i) values[i] = m->slots[vr[i]].s;
  return fmi3OK;
}

fmi3Status fmi3SetString(fmi3Instance instance, const fmi3ValueReference vr[], size_t nvr,
                         const fmi3String values[], size_t nValues) {
  static const VarType types[] = {VT_STRING};
  ModelInstance* m = (ModelInstance*)instance;
  size_t i;
  if (nValues != nvr) return fmi3Error;
  for (i = 0; i < nvr; ++i) {
    if (!instance_check_vr(m, "fmi3SetString", vr[i], types, 1) ||
        !instance_check_settable(m, "fmi3SetString", vr[i]) ||
        !instance_set_string(m, vr[i], values[i])) {
      return fmi3Error;
    }
  }
  return fmi3OK;
}

#ifndef DOPPEL_OMIT_DO_STEP /* the "missing symbol" test FMU leaves it out */
fmi3Status fmi3DoStep(fmi3Instance instance, fmi3Float64 currentCommunicationPoint,
                      fmi3Float64 communicationStepSize,
                      fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                      fmi3Boolean* eventHandlingNeeded, fmi3Boolean* terminateSimulation,
                      fmi3Boolean* earlyReturn, fmi3Float64* lastSuccessfulTime) {
  ModelInstance* m = (ModelInstance*)instance;
  Fmi3Glue* g = (Fmi3Glue*)m->glue;
  StepResult r;
  (void)noSetFMUStatePriorToCurrentPoint;
  *eventHandlingNeeded = false;
  *terminateSimulation = false;
  *earlyReturn = false;
  if (g->terminated) {
    model_logf(m, LOG_ERROR, "logStatusError", "doStep after the FMU asked to terminate");
    return fmi3Error;
  }
  r = instance_do_step(m, currentCommunicationPoint, communicationStepSize);
  *lastSuccessfulTime = m->time;
  if (r == STEP_ERROR) return fmi3Error;
  if (r == STEP_TERMINATE) {
    g->terminated = true;
    *terminateSimulation = true;
  }
  return fmi3OK;
}
#endif
