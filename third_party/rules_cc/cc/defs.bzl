"""Minimal rules_cc for Bazel 4: re-exports the native C++ rules.

Debian's bazel-rules-cc is written for newer Bazel (it loads `use_cpp_toolchain`,
which Bazel 4's @bazel_tools lacks), so @bazel_tools//tools/cpp gets this instead.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
