// The text a SQL statement's params and rows cross the JS/wasm boundary in
// (cpp/src/bridge_codec.h; worker/src/do/core.ts writes and reads the other
// side). Lengths count UTF-16 units, as JS strings do.

#include "bridge_codec.h"

#include <doctest/doctest.h>

#include <cmath>

namespace seqsync {
namespace {

TEST_SUITE("bridge_codec") {

TEST_CASE("params: each kind, texts measured in UTF-16 units") {
  std::string out;
  REQUIRE(EncodeSqlParams({SqlValue::Null(), SqlValue::Integer(-42), SqlValue::Real(0.5), SqlValue::Text(""),
                           SqlValue::Text("a;b:c"), SqlValue::Text("é"), SqlValue::Text("\xF0\x9F\x98\x80")},
                          &out));
  // é is 2 bytes and 1 unit; U+1F600 is 4 bytes and 2 units (a surrogate pair).
  CHECK(out == "ni-42;f0.5;t0:t5:a;b:ct1:\xC3\xA9t2:\xF0\x9F\x98\x80");
}

TEST_CASE("params: a text that is not UTF-8 is refused (JS would measure another length)") {
  std::string out;
  CHECK_FALSE(EncodeSqlParams({SqlValue::Text("\xC3")}, &out));
  CHECK_FALSE(EncodeSqlParams({SqlValue::Text("\xFF")}, &out));
  CHECK_FALSE(EncodeSqlParams({SqlValue::Text("a\x80")}, &out));
}

TEST_CASE("results: one text cell, rows of cells, errors") {
  auto one = DecodeSqlResult("T[1,2]");
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0][0].text == "[1,2]");

  auto rows = DecodeSqlResult("R2,3;i7;t2:\xC3\xA9xnt2:\xF0\x9F\x98\x80" "f1.5;fInfinity;");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0][0].integer == 7);
  CHECK((*rows)[0][1].text == "\xC3\xA9x");
  CHECK((*rows)[0][2].is_null());
  CHECK((*rows)[1][0].text == "\xF0\x9F\x98\x80");
  CHECK((*rows)[1][1].real == 1.5);
  CHECK(std::isinf((*rows)[1][2].real));

  auto none = DecodeSqlResult("R0,0;");
  REQUIRE(none.ok());
  CHECK(none->empty());

  auto error = DecodeSqlResult("Eno such table: x");
  REQUIRE_FALSE(error.ok());
  CHECK(error.status().code() == Code::kInternal);
  CHECK(error.status().message() == "no such table: x");
}

TEST_CASE("results: malformed text is an internal error, never a partial read") {
  for (const char* bad : {"", "X", "R1,1;", "R1,1;t5:abc", "R1,1;i12", "R1,1;i1x;", "R1,1;i1;n", "R1,2;n",
                          "R9999999,9999999;n", "R1,1;t1:\xF0\x9F\x98\x80", "R1,1;fabc;"}) {
    CAPTURE(bad);
    CHECK_FALSE(DecodeSqlResult(bad).ok());
  }
}

TEST_CASE("a round trip keeps every value") {
  const std::vector<SqlValue> values{SqlValue::Null(), SqlValue::Integer(9007199254740991), SqlValue::Real(-0.1),
                                     SqlValue::Real(1e300), SqlValue::Text("line\nnext\x1f"), SqlValue::Text("☃")};
  std::string cells;
  REQUIRE(EncodeSqlParams(values, &cells));
  auto rows = DecodeSqlResult("R1,6;" + cells);
  REQUIRE(rows.ok());
  REQUIRE((*rows)[0].size() == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    CAPTURE(i);
    CHECK((*rows)[0][i].kind == values[i].kind);
    CHECK((*rows)[0][i].integer == values[i].integer);
    CHECK((*rows)[0][i].real == values[i].real);
    CHECK((*rows)[0][i].text == values[i].text);
  }
}

}  // TEST_SUITE

}  // namespace
}  // namespace seqsync
