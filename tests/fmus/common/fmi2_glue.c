/* FMI 2.0 co-simulation interface of a test model (model.h). Behaves like a careful real FMU:
 * checks the GUID, the value reference types, when variables may be set, and the communication
 * point; reports errors through the logger. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "sim/fmi/fmi2_api.h"

#ifndef MODEL_GUID
#error "MODEL_GUID must be defined"
#endif

typedef struct {
  fmi2CallbackFunctions callbacks; /* a copy: the importer's struct need not outlive the call */
  int logging_on;
  bool terminated;        /* the model asked to stop */
  double last_successful; /* time reached by the last doStep */
} Fmi2Glue;

static void* glue_alloc(ModelInstance* m, size_t n) {
  return ((Fmi2Glue*)m->glue)->callbacks.allocateMemory(1, n);
}
static void glue_dealloc(ModelInstance* m, void* p) {
  ((Fmi2Glue*)m->glue)->callbacks.freeMemory(p);
}
static void glue_log(ModelInstance* m, LogLevel level, const char* category, const char* msg) {
  Fmi2Glue* g = (Fmi2Glue*)m->glue;
  if (!g->logging_on && level < LOG_WARNING) return;
  /* The message is a format: pass it as an argument so a '%' in it is printed as is. */
  g->callbacks.logger(g->callbacks.componentEnvironment, m->instance_name, (fmi2Status)level,
                      category, "%s", msg);
}

const char* fmi2GetTypesPlatform(void) { return "default"; }
const char* fmi2GetVersion(void) { return "2.0"; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories,
                               const fmi2String categories[]) {
  ModelInstance* m = (ModelInstance*)c;
  (void)nCategories;
  (void)categories;
  ((Fmi2Glue*)m->glue)->logging_on = loggingOn;
  return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation,
                              const fmi2CallbackFunctions* functions, fmi2Boolean visible,
                              fmi2Boolean loggingOn) {
  Fmi2Glue* g;
  ModelInstance* m;
  (void)fmuResourceLocation;
  (void)visible;
  if (functions == NULL || functions->logger == NULL || functions->allocateMemory == NULL ||
      functions->freeMemory == NULL) {
    return NULL;
  }
  if (instanceName == NULL || instanceName[0] == '\0') {
    functions->logger(functions->componentEnvironment, "?", fmi2Error, "logStatusError",
                      "fmi2Instantiate: missing instance name");
    return NULL;
  }
  if (fmuType != fmi2CoSimulation) {
    functions->logger(functions->componentEnvironment, instanceName, fmi2Error, "logStatusError",
                      "fmi2Instantiate: this FMU supports co-simulation only");
    return NULL;
  }
  if (fmuGUID == NULL || strcmp(fmuGUID, MODEL_GUID) != 0) {
    functions->logger(functions->componentEnvironment, instanceName, fmi2Error, "logStatusError",
                      "fmi2Instantiate: wrong GUID %s, expected %s", fmuGUID ? fmuGUID : "(null)",
                      MODEL_GUID);
    return NULL;
  }
  g = (Fmi2Glue*)functions->allocateMemory(1, sizeof *g);
  if (g == NULL) return NULL;
  memcpy(&g->callbacks, functions, sizeof *functions);
  g->logging_on = loggingOn;
  m = instance_new(instanceName, g, glue_alloc, glue_dealloc, glue_log);
  if (m == NULL) {
    functions->freeMemory(g);
    return NULL;
  }
  return m;
}

void fmi2FreeInstance(fmi2Component c) {
  ModelInstance* m = (ModelInstance*)c;
  Fmi2Glue* g;
  fmi2CallbackFreeMemory release;
  if (m == NULL) return;
  g = (Fmi2Glue*)m->glue;
  release = g->callbacks.freeMemory;
  instance_free(m);
  release(g);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                               fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
  ModelInstance* m = (ModelInstance*)c;
  (void)toleranceDefined;
  (void)tolerance;
  if (stopTimeDefined && stopTime < startTime) {
    model_logf(m, LOG_ERROR, "logStatusError", "stop time %g before start time %g", stopTime,
               startTime);
    return fmi2Error;
  }
  m->time = startTime;
  return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
  (void)c;
  return fmi2OK;
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
  ModelInstance* m = (ModelInstance*)c;
  m->initialized = true;
  ((Fmi2Glue*)m->glue)->last_successful = m->time;
  model_calculate(m);
  return fmi2OK;
}

fmi2Status fmi2Terminate(fmi2Component c) {
  (void)c;
  return fmi2OK;
}

fmi2Status fmi2Reset(fmi2Component c) {
  ModelInstance* m = (ModelInstance*)c;
  m->initialized = false;
  m->time = 0;
  ((Fmi2Glue*)m->glue)->terminated = false;
  model_start(m);
  return fmi2OK;
}

static const VarType kReal[] = {VT_FLOAT64};
static const VarType kInteger[] = {VT_INT32, VT_ENUMERATION};
static const VarType kBoolean[] = {VT_BOOLEAN};
static const VarType kString[] = {VT_STRING};

#define CHECK_ALL(function, types, settable)                                            \
  do {                                                                                  \
    size_t i_;                                                                          \
    for (i_ = 0; i_ < nvr; ++i_) {                                                      \
      if (!instance_check_vr(m, function, vr[i_], types, sizeof types / sizeof *types)) \
        return fmi2Error;                                                               \
      if (settable && !instance_check_settable(m, function, vr[i_])) return fmi2Error;  \
    }                                                                                   \
  } while (0)

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                       fmi2Real value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2GetReal", kReal, 0);
  model_calculate(m);
  for (i = 0; i < nvr; ++i) value[i] = m->slots[vr[i]].r;
  return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          fmi2Integer value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2GetInteger", kInteger, 0);
  model_calculate(m);
  for (i = 0; i < nvr; ++i) value[i] = (fmi2Integer)m->slots[vr[i]].i;
  return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          fmi2Boolean value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2GetBoolean", kBoolean, 0);
  model_calculate(m);
  for (i = 0; i < nvr; ++i) value[i] = m->slots[vr[i]].b ? fmi2True : fmi2False;
  return fmi2OK;
}

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                         fmi2String value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2GetString", kString, 0);
  model_calculate(m);
  for (i = 0; i < nvr; ++i) value[i] = m->slots[vr[i]].s;
  return fmi2OK;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                       const fmi2Real value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2SetReal", kReal, 1);
  for (i = 0; i < nvr; ++i) m->slots[vr[i]].r = value[i];
  return fmi2OK;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          const fmi2Integer value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2SetInteger", kInteger, 1);
  for (i = 0; i < nvr; ++i) m->slots[vr[i]].i = value[i];
  return fmi2OK;
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          const fmi2Boolean value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2SetBoolean", kBoolean, 1);
  for (i = 0; i < nvr; ++i) m->slots[vr[i]].b = value[i] != fmi2False;
  return fmi2OK;
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                         const fmi2String value[]) {
  ModelInstance* m = (ModelInstance*)c;
  size_t i;
  CHECK_ALL("fmi2SetString", kString, 1);
  for (i = 0; i < nvr; ++i) {
    if (!instance_set_string(m, vr[i], value[i])) return fmi2Error;
  }
  return fmi2OK;
}

/* Not supported by the test FMUs (canGetAndSetFMUstate etc. are false): present because the
 * standard requires every function to be exported. */
fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate* s) {
  (void)c;
  (void)s;
  return fmi2Error;
}
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) {
  (void)c;
  (void)s;
  return fmi2Error;
}
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate* s) {
  (void)c;
  (void)s;
  return fmi2Error;
}
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t* n) {
  (void)c;
  (void)s;
  (void)n;
  return fmi2Error;
}
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) {
  (void)c;
  (void)s;
  (void)b;
  (void)n;
  return fmi2Error;
}
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate* s) {
  (void)c;
  (void)b;
  (void)n;
  (void)s;
  return fmi2Error;
}
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu,
                                        const fmi2ValueReference z[], size_t nz,
                                        const fmi2Real dv[], fmi2Real dz[]) {
  (void)c;
  (void)u;
  (void)nu;
  (void)z;
  (void)nz;
  (void)dv;
  (void)dz;
  return fmi2Error;
}
fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                       const fmi2Integer order[], const fmi2Real value[]) {
  (void)c;
  (void)vr;
  (void)nvr;
  (void)order;
  (void)value;
  return fmi2Error;
}
fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                        const fmi2Integer order[], fmi2Real value[]) {
  (void)c;
  (void)vr;
  (void)nvr;
  (void)order;
  (void)value;
  return fmi2Error;
}

#ifndef DOPPEL_OMIT_DO_STEP /* the "missing symbol" test FMU leaves it out */
fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint,
                      fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentPoint) {
  ModelInstance* m = (ModelInstance*)c;
  Fmi2Glue* g = (Fmi2Glue*)m->glue;
  (void)noSetFMUStatePriorToCurrentPoint;
  if (g->terminated) {
    model_logf(m, LOG_ERROR, "logStatusError", "doStep after the FMU asked to terminate");
    return fmi2Error;
  }
  switch (instance_do_step(m, currentCommunicationPoint, communicationStepSize)) {
    case STEP_OK:
      g->last_successful = m->time;
      return fmi2OK;
    case STEP_TERMINATE:
      g->terminated = true;
      g->last_successful = m->time;
      return fmi2Discard;
    case STEP_ERROR:
      break;
  }
  return fmi2Error;
}
#endif

fmi2Status fmi2CancelStep(fmi2Component c) {
  (void)c;
  return fmi2Error;
}

fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status* value) {
  (void)c;
  (void)s;
  (void)value;
  return fmi2Discard;
}

fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real* value) {
  ModelInstance* m = (ModelInstance*)c;
  if (s != fmi2LastSuccessfulTime) return fmi2Discard;
  *value = ((Fmi2Glue*)m->glue)->last_successful;
  return fmi2OK;
}

fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer* value) {
  (void)c;
  (void)s;
  (void)value;
  return fmi2Discard;
}

fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean* value) {
  ModelInstance* m = (ModelInstance*)c;
  if (s != fmi2Terminated) return fmi2Discard;
  *value = ((Fmi2Glue*)m->glue)->terminated ? fmi2True : fmi2False;
  return fmi2OK;
}

fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String* value) {
  (void)c;
  (void)s;
  (void)value;
  return fmi2Discard;
}
