// Plain-text layout for table output: aligned columns and key/value blocks.
// Cells and values are printed TerminalSafe (client/terminal_text.h): they
// hold text from the daemon, such as other users' display names.
#ifndef STRONGHOLD_CLIENT_TABLE_H_
#define STRONGHOLD_CLIENT_TABLE_H_

#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace stronghold::client {

// Columns padded to their widest cell and separated by two spaces; numeric
// columns can be right-aligned so digits line up.
class Table {
 public:
  explicit Table(std::vector<std::string> header,
                 std::set<size_t> right_aligned_columns = {});

  // Missing cells print empty; extra cells are an error in the caller and
  // are dropped.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  void Print(std::ostream& out) const;

 private:
  const std::vector<std::string> header_;
  const std::set<size_t> right_aligned_;
  std::vector<std::vector<std::string>> rows_;
};

// "key:  value" lines with the values aligned.
using KeyValues = std::vector<std::pair<std::string, std::string>>;
void PrintKeyValues(const KeyValues& rows, std::ostream& out);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_TABLE_H_
