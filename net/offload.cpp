#include "net/offload.h"

#include <memory>

namespace qun {

namespace {

struct Job {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> done;
};

}  // namespace

void offload(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->req.data = job.get();
  const int r = uv_queue_work(
      loop, &job->req, [](uv_work_t* req) { static_cast<Job*>(req->data)->work(); },
      [](uv_work_t* req, int) {
        std::unique_ptr<Job> owned(static_cast<Job*>(req->data));
        owned->done();
      });
  if (r != 0) {  // only for a bad argument; run it here rather than lose it
    job->work();
    job->done();
    return;
  }
  (void)job.release();  // the after-work callback owns it now
}

}  // namespace qun
