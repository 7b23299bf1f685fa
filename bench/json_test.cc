#include "bench/json.h"

#include "gtest/gtest.h"

namespace qfarm::bench {
namespace {

TEST(JsonTest, ParsesWhatTheScriptPrints) {
  absl::StatusOr<JsonValue> doc =
      ParseJson(R"({"method":"asyncio","slots":10,"wall_s":1.0025,"ok":true,)"
                R"("times_us":[[1,2,3,4],[5,6,7,8]],"error":"","none":null,)"
                R"("usage":{"user_s":0.5e-1,"voluntary_cs":-3}})");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->Get("method").string, "asyncio");
  EXPECT_EQ(doc->Get("slots").number, 10);
  EXPECT_DOUBLE_EQ(doc->Get("wall_s").number, 1.0025);
  EXPECT_TRUE(doc->Get("ok").boolean);
  ASSERT_EQ(doc->Get("times_us").array.size(), 2u);
  EXPECT_EQ(doc->Get("times_us").array[1].array[3].number, 8);
  EXPECT_EQ(doc->Get("none").type, JsonValue::Type::kNull);
  EXPECT_DOUBLE_EQ(doc->Get("usage").Get("user_s").number, 0.05);
  EXPECT_EQ(doc->Get("usage").Get("voluntary_cs").number, -3);
  EXPECT_EQ(doc->Get("missing").type, JsonValue::Type::kNull);
}

TEST(JsonTest, Escapes) {
  absl::StatusOr<JsonValue> doc =
      ParseJson(R"(["a\"b\\c\n", "\u00e9\u20ac", "\/"])");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->array[0].string, "a\"b\\c\n");
  EXPECT_EQ(doc->array[1].string, "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(doc->array[2].string, "/");
}

TEST(JsonTest, RefusesBadText) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"open",
                          "[1] 2", "{1:2}", "[\"\\x\"]"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace qfarm::bench
