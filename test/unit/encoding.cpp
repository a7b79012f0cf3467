// Tier A: src/detail/encoding.hpp (base64 for KV values, percent-encoding for KV paths, printable() for untrusted text).
#include "detail/encoding.hpp"

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace {

using colock::detail::base64_decode;
using colock::detail::base64_encode;
using colock::detail::encode_key_path;
using colock::detail::encode_query_value;
using colock::detail::printable;
using namespace std::string_literals;
using namespace std::string_view_literals;

bool rejected(std::string_view text) { return !base64_decode(text).has_value(); }

} // namespace

BOOST_AUTO_TEST_SUITE(test_encoding)

BOOST_AUTO_TEST_CASE(base64_encodes_rfc4648_vectors)
{
    BOOST_TEST(base64_encode("") == "");
    BOOST_TEST(base64_encode("f") == "Zg==");
    BOOST_TEST(base64_encode("fo") == "Zm8=");
    BOOST_TEST(base64_encode("foo") == "Zm9v");
    BOOST_TEST(base64_encode("foob") == "Zm9vYg==");
    BOOST_TEST(base64_encode("fooba") == "Zm9vYmE=");
    BOOST_TEST(base64_encode("foobar") == "Zm9vYmFy");
}

BOOST_AUTO_TEST_CASE(base64_decodes_rfc4648_vectors)
{
    BOOST_TEST(base64_decode("").value() == "");
    BOOST_TEST(base64_decode("Zg==").value() == "f");
    BOOST_TEST(base64_decode("Zm8=").value() == "fo");
    BOOST_TEST(base64_decode("Zm9v").value() == "foo");
    BOOST_TEST(base64_decode("Zm9vYg==").value() == "foob");
    BOOST_TEST(base64_decode("Zm9vYmE=").value() == "fooba");
    BOOST_TEST(base64_decode("Zm9vYmFy").value() == "foobar");
}

BOOST_AUTO_TEST_CASE(base64_round_trips_every_length_from_0_to_10_with_binary_bytes)
{
    for (std::size_t n = 0; n <= 10; ++n) {
        std::string bytes;
        for (std::size_t i = 0; i < n; ++i)
            bytes.push_back(static_cast<char>((i * 97 + n * 31 + 0x80) & 0xFF)); // high bytes, NUL-free and with NUL
        if (n > 2)
            bytes[1] = '\0';
        const std::string encoded = base64_encode(bytes);
        BOOST_TEST_CONTEXT("length " << n)
        {
            BOOST_TEST(encoded.size() == (n + 2) / 3 * 4);
            const auto decoded = base64_decode(encoded);
            BOOST_REQUIRE(decoded.has_value());
            BOOST_TEST(*decoded == bytes);
        }
    }
}

BOOST_AUTO_TEST_CASE(base64_round_trips_all_256_byte_values)
{
    std::string bytes;
    for (int i = 0; i < 256; ++i)
        bytes.push_back(static_cast<char>(i));
    for (std::size_t cut = 0; cut < 3; ++cut) {
        const std::string input = bytes.substr(cut);
        const auto decoded = base64_decode(base64_encode(input));
        BOOST_REQUIRE(decoded.has_value());
        BOOST_TEST(*decoded == input);
    }
    BOOST_TEST(base64_encode("\xff\xfe\xfd"s) == "//79");
    BOOST_TEST(base64_encode("\xfb\xff"s) == "+/8=");
    BOOST_TEST(base64_decode("AAAA").value() == "\0\0\0"s);
}

BOOST_AUTO_TEST_CASE(base64_decode_rejects_characters_outside_the_standard_alphabet)
{
    BOOST_TEST(rejected("Zm9v!A=="));
    BOOST_TEST(rejected("Zm9-"));  // URL-safe alphabet
    BOOST_TEST(rejected("Zm9_"));  // URL-safe alphabet
    BOOST_TEST(rejected("Zm\x80v"));
    BOOST_TEST(rejected("Zm\0v"sv));
    BOOST_TEST(rejected("Zm9v.A=="));
}

BOOST_AUTO_TEST_CASE(base64_decode_rejects_misplaced_padding)
{
    BOOST_TEST(rejected("===="));
    BOOST_TEST(rejected("Z==="));
    BOOST_TEST(rejected("=Zm9"));
    BOOST_TEST(rejected("Z=m9"));
    BOOST_TEST(rejected("Zm=9"));     // a character after padding
    BOOST_TEST(rejected("Zg==Zm9v")); // padding in a group that is not the last
    BOOST_TEST(rejected("Zm8=Zm9v"));
}

BOOST_AUTO_TEST_CASE(base64_decode_rejects_lengths_that_are_not_a_multiple_of_four)
{
    BOOST_TEST(rejected("Z"));
    BOOST_TEST(rejected("Zg"));     // unpadded
    BOOST_TEST(rejected("Zg="));
    BOOST_TEST(rejected("Zm9"));
    BOOST_TEST(rejected("Zm9vY"));
    BOOST_TEST(rejected("Zm9v="));
    BOOST_TEST(rejected("Zg==="));
}

BOOST_AUTO_TEST_CASE(base64_decode_rejects_whitespace)
{
    BOOST_TEST(rejected(" Zm9"));
    BOOST_TEST(rejected("Zm9\n"));
    BOOST_TEST(rejected("Zm\t9"));
    BOOST_TEST(rejected("Zm9vYmE\n"));
    BOOST_TEST(rejected("Zm9v\r\nYmFy"));
    BOOST_TEST(rejected("Zm9v    "));
}

BOOST_AUTO_TEST_CASE(encode_key_path_keeps_slashes_and_unreserved_characters)
{
    BOOST_TEST(encode_key_path("") == "");
    BOOST_TEST(encode_key_path("service/leader") == "service/leader");
    BOOST_TEST(encode_key_path("a/b/c/") == "a/b/c/");
    BOOST_TEST(encode_key_path("AZaz09-._~") == "AZaz09-._~");
}

BOOST_AUTO_TEST_CASE(encode_key_path_percent_encodes_reserved_and_non_ascii_bytes)
{
    BOOST_TEST(encode_key_path("a b") == "a%20b");
    BOOST_TEST(encode_key_path("100%") == "100%25");
    BOOST_TEST(encode_key_path("a?b") == "a%3Fb");
    BOOST_TEST(encode_key_path("a#b") == "a%23b");
    BOOST_TEST(encode_key_path("a+b&c=d") == "a%2Bb%26c%3Dd");
    BOOST_TEST(encode_key_path("caf\xC3\xA9") == "caf%C3%A9");
    BOOST_TEST(encode_key_path("\x01\x7f\xff"s) == "%01%7F%FF");
    BOOST_TEST(encode_key_path("a\0b"s) == "a%00b");
}

BOOST_AUTO_TEST_CASE(encode_query_value_encodes_slashes_too)
{
    BOOST_TEST(encode_query_value("a/b c") == "a%2Fb%20c");
    BOOST_TEST(encode_query_value("dc-1_x.y~") == "dc-1_x.y~");
}

BOOST_AUTO_TEST_CASE(printable_passes_plain_ascii_unchanged)
{
    BOOST_TEST(printable("") == "");
    BOOST_TEST(printable("No cluster leader") == "No cluster leader");
    BOOST_TEST(printable(" !~") == " !~");
}

BOOST_AUTO_TEST_CASE(printable_escapes_control_and_non_ascii_bytes)
{
    BOOST_TEST(printable("a\nb") == "a\\x0ab");
    BOOST_TEST(printable("\r\t") == "\\x0d\\x09");
    BOOST_TEST(printable("\x7f") == "\\x7f");
    BOOST_TEST(printable("\x1b[31m") == "\\x1b[31m");
    BOOST_TEST(printable("caf\xC3\xA9") == "caf\\xc3\\xa9");
    BOOST_TEST(printable("a\0b"sv) == "a\\x00b");
}

BOOST_AUTO_TEST_CASE(printable_truncates_to_max_input_bytes_and_marks_it)
{
    const std::string long_text(600, 'a');
    BOOST_TEST(printable(long_text) == std::string(512, 'a') + "...");
    BOOST_TEST(printable("abcdef", 3) == "abc...");
    BOOST_TEST(printable("abc", 3) == "abc"); // exactly max: not truncated
    BOOST_TEST(printable("abc", 0) == "...");
    BOOST_TEST(printable("\x01\x02\x03", 2) == "\\x01\\x02...");
}

BOOST_AUTO_TEST_SUITE_END()
