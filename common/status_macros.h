// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr,
// which Abseil 20220623 does not ship.
//
//   RETURN_IF_ERROR(WriteHeader(file));
//   ASSIGN_OR_RETURN(Task task, ParseTaskSpec(spec));
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QFARM_STATUS_CONCAT_INNER(a, b) a##b
#define QFARM_STATUS_CONCAT(a, b) QFARM_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status qfarm_status_ = (expr);         \
    if (!qfarm_status_.ok()) return qfarm_status_; \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr)                                           \
  QFARM_ASSIGN_OR_RETURN_IMPL(QFARM_STATUS_CONCAT(qfarm_statusor_, __LINE__), \
                              lhs, expr)

#define QFARM_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
