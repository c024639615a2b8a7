#include <sstream>
#include <string>

#include "client/human_format.h"
#include "client/job_printer.h"
#include "client/json_output.h"
#include "client/table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::HasSubstr;

TEST(HumanFormatTest, Bytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(12897484), "12.3 MiB");
  EXPECT_EQ(HumanBytes(8LL << 30), "8.0 GiB");
  EXPECT_EQ(HumanBytes((1LL << 20) - 1), "1.0 MiB");  // not "1024.0 KiB"
}

TEST(HumanFormatTest, Count) {
  EXPECT_EQ(HumanCount(999), "999");
  EXPECT_EQ(HumanCount(124439808), "124.4M");
  EXPECT_EQ(HumanCount(1.5e12), "1.5T");
}

TEST(JobPrinterTest, MetricsLine) {
  v1::StepMetrics metrics;
  metrics.set_step(12);
  metrics.set_loss(3.45209);
  metrics.set_lr(1e-3);
  metrics.set_samples_per_s(4.21);
  metrics.set_tokens_per_s(1075.2);
  metrics.set_step_s(0.951);
  EXPECT_EQ(FormatMetrics(metrics, 30),
            "step 12/30 loss 3.4521 lr 1.00e-03 4.2 samples/s 1075 tok/s "
            "step 0.95s");
  EXPECT_THAT(FormatMetrics(metrics, 0), testing::StartsWith("step 12 loss"));
}

TEST(JobPrinterTest, MetricsLineOfAnFp16Step) {
  v1::StepMetrics metrics;
  metrics.set_step(3);
  metrics.set_loss_scale(1);  // FP32 and BF16: nothing added
  EXPECT_EQ(FormatMetrics(metrics, 0).find("scale"), std::string::npos);
  metrics.set_loss_scale(32768);
  metrics.set_skipped(true);
  EXPECT_THAT(FormatMetrics(metrics, 0),
              testing::EndsWith(" loss scale 32768 (skipped: fp16 overflow)"));
}

TEST(JobPrinterTest, EventLines) {
  v1::JobEvent event;
  event.set_state(v1::Job::RUNNING);
  EXPECT_EQ(FormatEvent(event, 30), "state RUNNING");
  event.set_message("window 4: fits 8 GiB");
  EXPECT_EQ(FormatEvent(event, 30), "window 4: fits 8 GiB");
  event.mutable_metrics()->set_step(3);
  EXPECT_THAT(FormatEvent(event, 30), testing::StartsWith("step 3/30 "));
  EXPECT_EQ(FormatEvent(v1::JobEvent(), 30), "");
}

TEST(JobPrinterTest, JobTableColumns) {
  v1::Job job;
  job.set_name("jobs/7");
  job.set_display_name("tiny");
  job.set_state(v1::Job::RUNNING);
  job.set_step(12);
  job.set_last_loss(3.5);
  job.mutable_spec()->mutable_training()->set_steps(30);
  std::ostringstream out;
  PrintJobTable({job}, out);
  EXPECT_THAT(out.str(), HasSubstr("NAME    DISPLAY NAME  STATE     STEP  "
                                   "  LOSS  CREATED\n"));
  EXPECT_THAT(out.str(), HasSubstr("jobs/7  tiny          RUNNING  12/30  "
                                   "3.5000  -\n"));
}

TEST(TableTest, AlignsColumns) {
  Table table({"A", "BB", "N"}, /*right_aligned_columns=*/{2});
  table.AddRow({"long cell", "x", "5"});
  table.AddRow({"y", "zz", "1234"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "A          BB     N\n"
            "long cell  x      5\n"
            "y          zz  1234\n");
}

TEST(JsonOutputTest, ProtoFieldNamesAndZeroFields) {
  v1::Job job;
  job.set_name("jobs/1");
  absl::StatusOr<std::string> json = MessageToJson(job, /*multiline=*/false);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"name\":\"jobs/1\""));
  EXPECT_THAT(*json, HasSubstr("\"display_name\":\"\""));
  EXPECT_THAT(*json, HasSubstr("\"last_loss\":0"));
  EXPECT_THAT(*json, HasSubstr("\"state\":\"STATE_UNSPECIFIED\""));
  EXPECT_EQ(json->find('\n'), std::string::npos);
}

TEST(JsonOutputTest, Quote) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace stronghold::client
