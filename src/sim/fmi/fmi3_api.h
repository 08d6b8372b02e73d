/* The FMI 3.0 co-simulation C API as the standard defines it (FMI 3.0.1, chapters 2.2 and 4):
 * platform types, the status enum, callbacks and the function types an FMU exports. Written
 * from the specification text, not copied from the official headers. Plain C so that the test
 * FMUs (tests/fmus) compile against the same declarations the importer uses.
 *
 * Only scalar access is used by doppel; the array forms share these signatures (nValues counts
 * the elements). Scheduled execution, clocks and model exchange are not declared. */
#ifndef DOPPEL_SIM_FMI_FMI3_API_H_
#define DOPPEL_SIM_FMI_FMI3_API_H_

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Platform types (fmi3PlatformTypes.h). */
typedef void* fmi3Instance;
typedef void* fmi3InstanceEnvironment; /* the importer's pointer, passed back to callbacks */
typedef void* fmi3FMUState;
typedef uint32_t fmi3ValueReference;
typedef float fmi3Float32;
typedef double fmi3Float64;
typedef int8_t fmi3Int8;
typedef uint8_t fmi3UInt8;
typedef int16_t fmi3Int16;
typedef uint16_t fmi3UInt16;
typedef int32_t fmi3Int32;
typedef uint32_t fmi3UInt32;
typedef int64_t fmi3Int64;
typedef uint64_t fmi3UInt64;
typedef bool fmi3Boolean;
typedef char fmi3Char;
typedef const fmi3Char* fmi3String;
typedef uint8_t fmi3Byte;
typedef const fmi3Byte* fmi3Binary;
typedef bool fmi3Clock;

typedef enum { fmi3OK, fmi3Warning, fmi3Discard, fmi3Error, fmi3Fatal } fmi3Status;

/* Callbacks (2.3.1). The message is plain text (no format arguments, unlike FMI 2). */
typedef void (*fmi3LogMessageCallback)(fmi3InstanceEnvironment instanceEnvironment,
                                       fmi3Status status, fmi3String category, fmi3String message);
typedef void (*fmi3IntermediateUpdateCallback)(
    fmi3InstanceEnvironment instanceEnvironment, fmi3Float64 intermediateUpdateTime,
    fmi3Boolean intermediateVariableSetRequested, fmi3Boolean intermediateVariableGetAllowed,
    fmi3Boolean intermediateStepFinished, fmi3Boolean canReturnEarly,
    fmi3Boolean* earlyReturnRequested, fmi3Float64* earlyReturnTime);

/* Common functions. */
typedef const char* fmi3GetVersionTYPE(void);
typedef fmi3Status fmi3SetDebugLoggingTYPE(fmi3Instance instance, fmi3Boolean loggingOn,
                                           size_t nCategories, const fmi3String categories[]);
typedef fmi3Instance fmi3InstantiateCoSimulationTYPE(
    fmi3String instanceName, fmi3String instantiationToken, fmi3String resourcePath,
    fmi3Boolean visible, fmi3Boolean loggingOn, fmi3Boolean eventModeUsed,
    fmi3Boolean earlyReturnAllowed, const fmi3ValueReference requiredIntermediateVariables[],
    size_t nRequiredIntermediateVariables, fmi3InstanceEnvironment instanceEnvironment,
    fmi3LogMessageCallback logMessage, fmi3IntermediateUpdateCallback intermediateUpdate);
typedef void fmi3FreeInstanceTYPE(fmi3Instance instance);
typedef fmi3Status fmi3EnterInitializationModeTYPE(fmi3Instance instance,
                                                   fmi3Boolean toleranceDefined,
                                                   fmi3Float64 tolerance, fmi3Float64 startTime,
                                                   fmi3Boolean stopTimeDefined,
                                                   fmi3Float64 stopTime);
typedef fmi3Status fmi3ExitInitializationModeTYPE(fmi3Instance instance);
typedef fmi3Status fmi3TerminateTYPE(fmi3Instance instance);
typedef fmi3Status fmi3ResetTYPE(fmi3Instance instance);

/* Getters and setters: one pair per type, all with the same shape. */
#define DOPPEL_FMI3_ACCESSORS(Name, T)                                                            \
  typedef fmi3Status fmi3Get##Name##TYPE(fmi3Instance instance,                                   \
                                         const fmi3ValueReference valueReferences[],              \
                                         size_t nValueReferences, T values[], size_t nValues);    \
  typedef fmi3Status fmi3Set##Name##TYPE(                                                         \
      fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, \
      const T values[], size_t nValues);
DOPPEL_FMI3_ACCESSORS(Float32, fmi3Float32)
DOPPEL_FMI3_ACCESSORS(Float64, fmi3Float64)
DOPPEL_FMI3_ACCESSORS(Int8, fmi3Int8)
DOPPEL_FMI3_ACCESSORS(UInt8, fmi3UInt8)
DOPPEL_FMI3_ACCESSORS(Int16, fmi3Int16)
DOPPEL_FMI3_ACCESSORS(UInt16, fmi3UInt16)
DOPPEL_FMI3_ACCESSORS(Int32, fmi3Int32)
DOPPEL_FMI3_ACCESSORS(UInt32, fmi3UInt32)
DOPPEL_FMI3_ACCESSORS(Int64, fmi3Int64)
DOPPEL_FMI3_ACCESSORS(UInt64, fmi3UInt64)
DOPPEL_FMI3_ACCESSORS(Boolean, fmi3Boolean)
DOPPEL_FMI3_ACCESSORS(String, fmi3String)
#undef DOPPEL_FMI3_ACCESSORS

/* Co-simulation (4.2). */
typedef fmi3Status fmi3EnterStepModeTYPE(fmi3Instance instance);
typedef fmi3Status fmi3DoStepTYPE(fmi3Instance instance, fmi3Float64 currentCommunicationPoint,
                                  fmi3Float64 communicationStepSize,
                                  fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                                  fmi3Boolean* eventHandlingNeeded,
                                  fmi3Boolean* terminateSimulation, fmi3Boolean* earlyReturn,
                                  fmi3Float64* lastSuccessfulTime);

#ifdef __cplusplus
}
#endif

#endif /* DOPPEL_SIM_FMI_FMI3_API_H_ */
