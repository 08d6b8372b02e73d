/* What both FMI glues share: the instance, the checks every real FMU makes, the RK4 step. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

void model_logf(ModelInstance* m, LogLevel level, const char* category, const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  m->log(m, level, category, buffer);
}

void rk4_step(const ModelInstance* m, DerivativeFn f, double t, double h, double* x, size_t n) {
  double k1[8], k2[8], k3[8], k4[8], tmp[8];
  size_t i;
  f(m, t, x, k1);
  for (i = 0; i < n; ++i) tmp[i] = x[i] + 0.5 * h * k1[i];
  f(m, t + 0.5 * h, tmp, k2);
  for (i = 0; i < n; ++i) tmp[i] = x[i] + 0.5 * h * k2[i];
  f(m, t + 0.5 * h, tmp, k3);
  for (i = 0; i < n; ++i) tmp[i] = x[i] + h * k3[i];
  f(m, t + h, tmp, k4);
  for (i = 0; i < n; ++i) x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

ModelInstance* instance_new(const char* name, void* glue, void* (*alloc)(ModelInstance*, size_t),
                            void (*dealloc)(ModelInstance*, void*),
                            void (*log)(ModelInstance*, LogLevel, const char*, const char*)) {
  ModelInstance bootstrap;
  ModelInstance* m;
  size_t i;
  memset(&bootstrap, 0, sizeof bootstrap);
  bootstrap.glue = glue;
  m = (ModelInstance*)alloc(&bootstrap, sizeof *m);
  if (m == NULL) return NULL;
  memset(m, 0, sizeof *m);
  m->glue = glue;
  m->alloc = alloc;
  m->dealloc = dealloc;
  m->log = log;
  m->slots = (Slot*)alloc(m, sizeof(Slot) * model_nvars);
  {
    size_t len = strlen(name) + 1;
    char* copy = (char*)alloc(m, len);
    if (m->slots == NULL || copy == NULL) {
      if (copy != NULL) dealloc(m, copy);
      if (m->slots != NULL) dealloc(m, m->slots);
      dealloc(m, m);
      return NULL;
    }
    memcpy(copy, name, len);
    m->instance_name = copy;
  }
  memset(m->slots, 0, sizeof(Slot) * model_nvars);
  for (i = 0; i < model_nvars; ++i) {
    if (model_vars[i].type == VT_STRING) instance_set_string(m, i, "");
  }
  model_start(m);
  return m;
}

void instance_free(ModelInstance* m) {
  size_t i;
  if (m == NULL) return;
  for (i = 0; i < model_nvars; ++i) {
    if (m->slots[i].s != NULL) m->dealloc(m, m->slots[i].s);
  }
  m->dealloc(m, m->slots);
  m->dealloc(m, (void*)m->instance_name);
  m->dealloc(m, m);
}

bool instance_set_string(ModelInstance* m, size_t vr, const char* value) {
  size_t len;
  char* copy;
  if (value == NULL) value = "";
  len = strlen(value) + 1;
  copy = (char*)m->alloc(m, len);
  if (copy == NULL) return false;
  memcpy(copy, value, len);
  if (m->slots[vr].s != NULL) m->dealloc(m, m->slots[vr].s);
  m->slots[vr].s = copy;
  return true;
}

bool instance_check_vr(ModelInstance* m, const char* function, uint64_t vr, const VarType* types,
                       size_t ntypes) {
  size_t i;
  if (vr >= model_nvars) {
    model_logf(m, LOG_ERROR, "logStatusError", "%s: unknown value reference %llu", function,
               (unsigned long long)vr);
    return false;
  }
  for (i = 0; i < ntypes; ++i) {
    if (model_vars[vr].type == types[i]) return true;
  }
  model_logf(m, LOG_ERROR, "logStatusError", "%s: value reference %llu has another type", function,
             (unsigned long long)vr);
  return false;
}

bool instance_check_settable(ModelInstance* m, const char* function, uint64_t vr) {
  Settable s = model_vars[vr].settable;
  if (s == SET_ALWAYS || (s == SET_BEFORE_INIT && !m->initialized)) return true;
  model_logf(m, LOG_ERROR, "logStatusError", "%s: variable %llu cannot be set %s", function,
             (unsigned long long)vr, m->initialized ? "after initialization" : "");
  return false;
}

StepResult instance_do_step(ModelInstance* m, double t, double h) {
  StepResult r;
  if (!m->initialized) {
    model_logf(m, LOG_ERROR, "logStatusError", "doStep before initialization");
    return STEP_ERROR;
  }
  if (!(h > 0) || fabs(t - m->time) > 1e-9 * (1.0 + fabs(t))) {
    model_logf(m, LOG_ERROR, "logStatusError",
               "doStep: communication point %.17g does not match the FMU time %.17g (step %g)", t,
               m->time, h);
    return STEP_ERROR;
  }
  r = model_step(m, t + h);
  if (r != STEP_ERROR) model_calculate(m);
  return r;
}
