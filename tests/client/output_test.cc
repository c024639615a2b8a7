#include <sstream>
#include <string>

#include "client/human_format.h"
#include "client/job_printer.h"
#include "client/json_output.h"
#include "client/table.h"
#include "client/terminal_text.h"
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
  EXPECT_EQ(
      FormatMetrics(metrics, 30),
      "step 12/30 loss 3.4521 lr 1.00e-03 4.2 samples/s 1075 tok/s step 0.95s");
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
  EXPECT_THAT(
      out.str(),
      HasSubstr("NAME    DISPLAY NAME  STATE     STEP    LOSS  CREATED\n"));
  EXPECT_THAT(out.str(),
              HasSubstr("jobs/7  tiny          RUNNING  12/30  3.5000  -\n"));
}

TEST(TableTest, AlignsColumns) {
  Table table({"A", "BB", "N"}, /*right_aligned_columns=*/{2});
  table.AddRow({"long cell", "x", "5"});
  table.AddRow({"y", "zz", "1234"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "A          BB     N\nlong cell  x      5\ny          zz  1234\n");
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

TEST(TerminalSafeTest, EscapesWhatATerminalWouldObey) {
  EXPECT_EQ(TerminalSafe("tiny run-3 (bf16)"), "tiny run-3 (bf16)");
  EXPECT_EQ(TerminalSafe("\x1b]0;owned\a"), "\\x1b]0;owned\\x07");
  EXPECT_EQ(TerminalSafe("\x1b[2J\x1b[31m"), "\\x1b[2J\\x1b[31m");
  EXPECT_EQ(TerminalSafe("a\rb\nc\td\x7f"), "a\\x0db\\x0ac\\x09d\\x7f");
  EXPECT_EQ(TerminalSafe(std::string("nul\0x", 5)), "nul\\x00x");
  // A literal backslash cannot pass for an escape.
  EXPECT_EQ(TerminalSafe("\\x1b"), "\\\\x1b");
  // C1 controls (CSI U+009B) and bidi overrides (U+202E) as code points.
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "31m"),
            "\\u009b31m");
  EXPECT_EQ(TerminalSafe("abc\xe2\x80\xae"
                         "exe.txt"),
            "abc\\u202eexe.txt");
  // Other UTF-8 is kept; bytes that are not UTF-8 are escaped one by one.
  EXPECT_EQ(TerminalSafe("Gr\xc3\xbc\xc3\x9f"
                         "e \xe2\x9c\x93 \xf0\x9f\x9a\x80"),
            "Gr\xc3\xbc\xc3\x9f"
            "e \xe2\x9c\x93 \xf0\x9f\x9a\x80");
  EXPECT_EQ(TerminalSafe("\x9b\xc3"), "\\x9b\\xc3");
  EXPECT_EQ(TerminalSafe("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

// A job as another user submitted it: its name and error try to take over
// the terminal of whoever lists it.
v1::Job HostileJob() {
  v1::Job job;
  job.set_name("jobs/7");
  job.set_display_name("\x1b]0;owned\x07\x1b[2J");
  job.set_state(v1::Job::FAILED);
  job.set_error("INVALID_ARGUMENT: \x1b[31mred\xc2\x9b");
  job.set_owner("CN=\x1b[5m");
  return job;
}

TEST(JobPrinterTest, ListAndStatusPrintNoEscapeSequences) {
  std::ostringstream table, status;
  PrintJobTable({HostileJob()}, table);
  PrintJob(HostileJob(), status);
  for (const std::string& text : {table.str(), status.str()}) {
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
    EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  }
  EXPECT_THAT(table.str(),
              HasSubstr("jobs/7  \\x1b]0;owned\\x07\\x1b[2J  FAILED"));
  EXPECT_THAT(
      status.str(),
      HasSubstr("error:         INVALID_ARGUMENT: \\x1b[31mred\\u009b"));
  EXPECT_THAT(status.str(), HasSubstr("owner:         CN=\\x1b[5m"));
}

TEST(JobPrinterTest, StatusShowsTheRanksNeverTheKey) {
  v1::Job job;
  job.set_name("jobs/3");
  v1::DistributedSpec* d = job.mutable_spec()->mutable_distributed();
  d->set_world_size(2);
  d->set_rank(1);
  d->set_local_rank(1);
  d->set_master_addr("node-0");
  d->set_master_port(29500);
  d->set_collective_timeout_s(60);
  d->set_job_key("never-printed-key");
  std::ostringstream status;
  PrintJob(job, status);
  EXPECT_THAT(status.str(),
              HasSubstr("rank 1 of 2 (local rank 1), rendezvous node-0:29500, "
                        "timeout 60 s"));
  EXPECT_EQ(status.str().find("never-printed-key"), std::string::npos);
  std::ostringstream single;
  job.mutable_spec()->clear_distributed();
  PrintJob(job, single);
  EXPECT_EQ(single.str().find("ranks"), std::string::npos);
}

TEST(JobPrinterTest, WatchMessagesPrintNoEscapeSequences) {
  v1::JobEvent event;
  event.set_message("checkpoint \x1b[8mhidden written");
  EXPECT_EQ(FormatEvent(event, 0), "checkpoint \\x1b[8mhidden written");
}

TEST(JsonOutputTest, EscapesControlCharacters) {
  absl::StatusOr<std::string> json =
      MessageToJson(HostileJob(), /*multiline=*/false);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->find('\x1b'), std::string::npos) << *json;
  EXPECT_EQ(json->find('\x07'), std::string::npos) << *json;
  EXPECT_EQ(json->find("\xc2\x9b"), std::string::npos) << *json;
}

}  // namespace
}  // namespace stronghold::client
