#include "common/json.h"

#include <random>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

// What protobuf's JSON printer writes for a string field holding `text`.
std::string Printed(const std::string& text) {
  google::protobuf::StringValue value;
  value.set_value(text);
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(value, &out).ok());
  return out;
}

// The string protobuf's JSON parser reads back from `json`.
std::string Parsed(const std::string& json) {
  google::protobuf::StringValue value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &value).ok())
      << json;
  return value.value();
}

TEST(JsonStringTest, IsWhatProtobufPrintsForEveryAsciiCharacter) {
  for (int c = 0; c < 0x80; ++c) {
    const std::string text = "a" + std::string(1, static_cast<char>(c)) + "b";
    EXPECT_EQ(JsonString(text), Printed(text)) << "character " << c;
  }
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("worker-1/thread-3"), "\"worker-1/thread-3\"");
  EXPECT_EQ(JsonString("a\"b\\c\n\t<"), "\"a\\\"b\\\\c\\n\\t\\u003c\"");
  EXPECT_EQ(JsonString(std::string("\x01", 1)), "\"\\u0001\"");
}

TEST(JsonStringTest, KeepsValidUtf8) {
  for (const std::string text :
       {"caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80", "\xEF\xBF\xBD"}) {
    EXPECT_EQ(JsonString(text), Printed(text));
    EXPECT_EQ(Parsed(JsonString(text)), text);
  }
}

TEST(JsonStringTest, ReplacesEachByteOutsideWellFormedUtf8) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(ValidUtf8("\xFF"), r);
  EXPECT_EQ(ValidUtf8("ok\xC3"), "ok" + r);                 // Truncated.
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), r + r);                  // Overlong.
  EXPECT_EQ(ValidUtf8("\xE0\x80\xAF"), r + r + r);          // Overlong.
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80x"), r + r + r + "x");   // Surrogate.
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // > U+10FFFF.
  EXPECT_EQ(ValidUtf8("a\xFF"
                      "b"),
            "a" + r + "b");
  EXPECT_EQ(JsonString("a\xFF"
                       "b"),
            "\"a" + r + "b\"");
  EXPECT_EQ(Parsed(JsonString("a\xFF"
                              "b")),
            "a" + r + "b");
}

TEST(JsonStringTest, AnyBytesBecomeJsonThatParsesBackToTheirValidUtf8) {
  std::mt19937 random(15);
  for (int i = 0; i < 2000; ++i) {
    std::string text(random() % 12, '\0');
    for (char& c : text) c = static_cast<char>(random() % 256);
    const std::string valid = ValidUtf8(text);
    EXPECT_EQ(ValidUtf8(valid), valid);
    EXPECT_EQ(JsonString(text), Printed(valid));
    EXPECT_EQ(Parsed(JsonString(text)), valid);
  }
}

}  // namespace
}  // namespace qfarm
