#include "client/table.h"

#include <algorithm>

#include "client/terminal_text.h"

namespace stronghold::client {

Table::Table(std::vector<std::string> header,
             std::set<size_t> right_aligned_columns)
    : header_(std::move(header)),
      right_aligned_(std::move(right_aligned_columns)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(header_.size());
  for (std::string& cell : cells) cell = TerminalSafe(cell);
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(header_.size());
  for (size_t c = 0; c < header_.size(); ++c) widths[c] = header_[c].size();
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string padding(widths[c] - row[c].size(), ' ');
      if (c > 0) line += "  ";
      if (right_aligned_.count(c) > 0) {
        line += padding + row[c];
      } else {
        line += row[c];
        if (c + 1 < row.size()) line += padding;  // no trailing blanks
      }
    }
    out << line << "\n";
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

void PrintKeyValues(const KeyValues& rows, std::ostream& out) {
  size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  for (const auto& [key, value] : rows) {
    out << key << ":" << std::string(width - key.size() + 2, ' ')
        << TerminalSafe(value) << "\n";
  }
}

}  // namespace stronghold::client
