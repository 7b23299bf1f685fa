// Results the scheduler owns, lent to an outgoing message for one write
// without copies (see Scheduler::ViewResults()).
//
//   LentResults lent;
//   lent.Lend(view->results, batch.mutable_results());
//   StartWrite(&batch);
//   ...
//   lent.Return();   // in OnWriteDone, or by the destructor
//
// The message only reads the results (to serialize them) while they are
// lent; Return() takes them out of it unfreed. The field must outlive the
// lending. Thread-compatible.
#pragma once

#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

class LentResults {
 public:
  LentResults() = default;
  LentResults(const LentResults&) = delete;
  LentResults& operator=(const LentResults&) = delete;
  ~LentResults() { Return(); }

  // Appends `results` to `*field`, which must hold only lent results (or
  // none). Returns what was lent before, first.
  void Lend(const std::vector<const v1::TaskResult*>& results,
            google::protobuf::RepeatedPtrField<v1::TaskResult>* field) {
    Return();
    field->Reserve(static_cast<int>(results.size()));
    for (const v1::TaskResult* result : results) {
      // Never written through: the owner's results stay unchanged.
      field->UnsafeArenaAddAllocated(const_cast<v1::TaskResult*>(result));
    }
    field_ = field;
  }

  // Takes every lent result back out of the field, unfreed. Idempotent.
  void Return() {
    if (field_ == nullptr) return;
    field_->UnsafeArenaExtractSubrange(0, field_->size(), nullptr);
    field_ = nullptr;
  }

 private:
  google::protobuf::RepeatedPtrField<v1::TaskResult>* field_ = nullptr;
};

}  // namespace qfarm::coordinator
