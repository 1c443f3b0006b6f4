// GoogleTest tests of the C++ binding (fidius_host.hpp) against the real
// library and the test fixtures in $FIDIUS_TEST_FIXTURES: cdylib, WASM and
// Python plugins, every error kind a test can provoke, discovery,
// interfaces, egress policies against an HTTP server, a TCP echo server
// and a UDP socket on 127.0.0.1, host functions (raw and JSON bindings served by C++ callables), move
// semantics, calls from several threads, and isolated plugins in worker
// processes (a crash, a timeout, the restart policy, hardening and host
// functions; valgrind runs this program, not the workers it starts).

#include "fidius_host.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kCalculatorHash = 0x0271e9b7d21d10f1ULL;

// Methods of the Calculator interface, by declaration index.
constexpr std::uint32_t kAdd = 0;
constexpr std::uint32_t kGreet = 1;
constexpr std::uint32_t kDivide = 2;
constexpr std::uint32_t kBoom = 4;
constexpr std::uint32_t kReverse = 5;
constexpr std::uint32_t kPing = 6;
constexpr std::uint32_t kMultiply = 7;

// ---- bincode, as the raw calls of typed methods expect it -----------------

void put_i64(std::vector<std::uint8_t> &out, std::int64_t value) {
    std::uint8_t bytes[8];
    std::memcpy(bytes, &value, sizeof bytes);
    out.insert(out.end(), bytes, bytes + sizeof bytes);
}

std::vector<std::uint8_t> encode_pair(std::int64_t a, std::int64_t b) {
    std::vector<std::uint8_t> out;
    put_i64(out, a);
    put_i64(out, b);
    return out;
}

std::vector<std::uint8_t> encode_string(const std::string &text) {
    std::vector<std::uint8_t> out;
    put_i64(out, static_cast<std::int64_t>(text.size()));
    out.insert(out.end(), text.begin(), text.end());
    return out;
}

std::int64_t decode_i64(fidius::bytes_view in) {
    std::int64_t value = 0;
    if (in.size() == 8) std::memcpy(&value, in.data(), 8);
    return value;
}

std::uint64_t read_u64(const std::uint8_t *bytes) {
    std::uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof value);
    return value;
}

std::vector<std::uint8_t> read_bytes(const std::string &path) {
    std::ifstream file(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// A new directory under /tmp, removed with its contents at the end of the scope.
class TempDir {
public:
    TempDir() {
        char name[] = "/tmp/fidius-cpp-XXXXXX";
        if (mkdtemp(name) == nullptr) throw std::runtime_error("cannot make a temporary directory");
        path_ = name;
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::filesystem::path &path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Runs `body` and returns the fidius::Error it throws; fails the test when
// it throws nothing.
template <typename Body>
fidius::Error error_of(Body &&body) {
    try {
        body();
    } catch (const fidius::Error &error) {
        return error;
    }
    ADD_FAILURE() << "expected a fidius::Error, but nothing was thrown";
    return fidius::Error(fidius::Status::Ok, "nothing was thrown");
}

// Expects `body` to throw a fidius::Error with `status` whose message
// contains `text`.
#define EXPECT_FIDIUS_ERROR(body, expected_status, expected_text)                      \
    do {                                                                              \
        const fidius::Error caught_ = error_of([&] { body; });                        \
        EXPECT_EQ(caught_.status(), expected_status) << caught_.what();               \
        EXPECT_NE(caught_.message().find(expected_text), std::string::npos) << caught_.what(); \
    } while (0)

// ---- loopback servers for the fetch and dialer plugins ----------------------

// Accepts connections on 127.0.0.1 on its own thread and hands each to
// `answer`; closes it after.
class LoopbackServer {
public:
    explicit LoopbackServer(std::function<void(int client)> answer) : answer_(std::move(answer)) {
        listener_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
            listen(listener_, 16) != 0 ||
            getsockname(listener_, reinterpret_cast<sockaddr *>(&address), &length) != 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    LoopbackServer(const LoopbackServer &) = delete;
    LoopbackServer &operator=(const LoopbackServer &) = delete;
    ~LoopbackServer() {
        shutdown(listener_, SHUT_RDWR);  // makes accept() fail: the thread ends
        thread_.join();
        close(listener_);
    }

    int port() const { return port_; }

private:
    void serve() {
        for (;;) {
            const int client = accept(listener_, nullptr, nullptr);
            if (client < 0) return;
            answer_(client);
            close(client);
        }
    }

    std::function<void(int)> answer_;
    int listener_ = -1;
    int port_ = 0;
    std::thread thread_;
};

// Answers every request with "hello from <path>" (paths under /private
// only with the credential "Bearer fresh": 401 without it), counts the
// requests and keeps the headers of each (names lowercase) by path.
class HttpServer {
public:
    using Headers = std::vector<std::pair<std::string, std::string>>;

    int port() const { return server_.port(); }
    int requests() const { return requests_.load(); }

    // The headers of every request for `path`, in order.
    std::vector<Headers> requests_for(const std::string &path) const {
        std::lock_guard<std::mutex> guard(lock_);
        std::vector<Headers> result;
        for (const auto &received : received_)
            if (received.first == path) result.push_back(received.second);
        return result;
    }

    // The value of the first header called `name` (lowercase), if any.
    static std::optional<std::string> header(const Headers &headers, const std::string &name) {
        for (const auto &h : headers)
            if (h.first == name) return h.second;
        return std::nullopt;
    }

    // The JSON arguments of fetch(method, url) for `path` on this server.
    std::string fetch_args(const std::string &method, const std::string &path) const {
        return "[\"" + method + "\", \"http://127.0.0.1:" + std::to_string(port()) + path + "\"]";
    }

private:
    void answer(int client) {
        std::string request;
        char buffer[2048];
        while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
            const ssize_t got = read(client, buffer, sizeof buffer);
            if (got <= 0) break;
            request.append(buffer, static_cast<std::size_t>(got));
        }
        // "GET /path HTTP/1.1": the path is the second word.
        const std::size_t start = request.find(' ') + 1;
        const std::string path = request.substr(start, request.find(' ', start) - start);
        // Then "name: value" lines up to the blank line.
        Headers headers;
        const std::size_t head_end = std::min(request.find("\r\n\r\n"), request.size());
        for (std::size_t line = request.find("\r\n"); line < head_end;) {
            const std::size_t next = std::min(request.find("\r\n", line + 2), head_end);
            const std::string text = request.substr(line + 2, next - line - 2);
            const std::size_t colon = text.find(':');
            if (colon != std::string::npos) {
                std::string name = text.substr(0, colon);
                for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                const std::size_t value = text.find_first_not_of(' ', colon + 1);
                headers.emplace_back(name, value == std::string::npos ? std::string() : text.substr(value));
            }
            line = next;
        }
        const bool refused = path.rfind("/private", 0) == 0 &&
                             header(headers, "authorization") != std::optional<std::string>("Bearer fresh");
        {
            std::lock_guard<std::mutex> guard(lock_);
            received_.emplace_back(path, std::move(headers));
        }
        requests_++;
        const std::string body = refused ? "who are you?" : "hello from " + path;
        const std::string reply = std::string(refused ? "HTTP/1.1 401 Unauthorized" : "HTTP/1.1 200 OK") +
                                  "\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + body;
        if (write(client, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size()))
            std::fprintf(stderr, "server: short write\n");
    }

    std::atomic<int> requests_{0};
    mutable std::mutex lock_;
    std::vector<std::pair<std::string, Headers>> received_;  // guarded by lock_
    LoopbackServer server_{[this](int client) { answer(client); }};  // last: stopped first
};

// Reads each connection to its end (the guest half-closes) and answers
// "echo: " + what it read; counts the connections.
class EchoServer {
public:
    int port() const { return server_.port(); }
    int connections() const { return connections_.load(); }

    // The JSON arguments of tcp_exchange / udp_send for `host`:`port`.
    static std::string args(const std::string &host, int port, const std::string &message) {
        return "[\"" + host + ":" + std::to_string(port) + "\", \"" + message + "\"]";
    }

private:
    void answer(int client) {
        connections_++;
        std::string input;
        char buffer[2048];
        while (input.size() < 16384) {
            const ssize_t got = read(client, buffer, sizeof buffer);
            if (got <= 0) break;
            input.append(buffer, static_cast<std::size_t>(got));
        }
        const std::string reply = "echo: " + input;
        if (write(client, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size()))
            std::fprintf(stderr, "echo server: short write\n");
    }

    std::atomic<int> connections_{0};
    LoopbackServer server_{[this](int client) { answer(client); }};  // last: stopped first
};

// A UDP socket bound to 127.0.0.1 that receives with a timeout.
class UdpReceiver {
public:
    UdpReceiver() {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        timeval timeout{10, 0};
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr *>(&address), &length) != 0 ||
            setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0)
            throw std::runtime_error("cannot bind a UDP socket on 127.0.0.1");
        port_ = ntohs(address.sin_port);
    }
    UdpReceiver(const UdpReceiver &) = delete;
    UdpReceiver &operator=(const UdpReceiver &) = delete;
    ~UdpReceiver() { close(fd_); }

    int port() const { return port_; }

    // The next datagram, or nothing after the timeout.
    std::optional<std::string> receive() const {
        char buffer[512];
        const ssize_t got = recv(fd_, buffer, sizeof buffer, 0);
        if (got < 0) return std::nullopt;
        return std::string(buffer, static_cast<std::size_t>(got));
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

// ---- the fixture -----------------------------------------------------------

// Every test reads the fixture directory from $FIDIUS_TEST_FIXTURES and
// fails (without running its body) when it is not set.
class FidiusTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char *dir = std::getenv("FIDIUS_TEST_FIXTURES");
        ASSERT_NE(dir, nullptr) << "FIDIUS_TEST_FIXTURES is not set: point it at target/test-fixtures";
        fixtures_ = dir;
    }

    std::string path_of(const std::string &relative) const { return fixtures_ + "/" + relative; }

    fidius::Host host_for(const std::string &dir) const {
        return fidius::Builder().add_search_path(path_of(dir)).build();
    }

    fidius::Interface interface_file(const std::string &name) const {
        return fidius::Interface::from_file(path_of("interfaces/" + name));
    }

    fidius::LoadOptions options_for(const std::string &interface_name) const {
        fidius::LoadOptions options;
        options.set_interface(interface_file(interface_name));
        return options;
    }

    // FetchGuest loaded by `host` with its interface and, when given, its own policy.
    fidius::Plugin load_fetcher(const fidius::Host &host, const fidius::EgressPolicy *policy = nullptr) const {
        fidius::LoadOptions options = options_for("fetcher.toml");
        if (policy != nullptr) options.set_egress_policy(*policy);
        return host.load_path(path_of("wasm/fetch"), "FetchGuest", options);
    }

    // SocketGuest loaded with its interface and, when given, its own policy.
    fidius::Plugin load_dialer(const fidius::EgressPolicy *policy) const {
        fidius::LoadOptions options = options_for("dialer.toml");
        if (policy != nullptr) options.set_egress_policy(*policy);
        return fidius::Builder().build().load_path(path_of("wasm/dialer"), "SocketGuest", options);
    }

    std::string fixtures_;
};

// ---- versions, names, hashes ----------------------------------------------

TEST_F(FidiusTest, VersionsStatusNamesAndSignatureHashes) {
    EXPECT_EQ(fidius::version(), FIDIUS_HOST_VERSION_STRING);
    EXPECT_EQ(fidius::version_number(), static_cast<std::uint32_t>(FIDIUS_HOST_VERSION_NUMBER));
    EXPECT_EQ(fidius::status_name(fidius::Status::Ok), "OK");
    EXPECT_EQ(fidius::status_name(fidius::Status::PluginNotFound), "PLUGIN_NOT_FOUND");
    EXPECT_EQ(fidius::status_name(fidius::Status::InvalidInterface), "INVALID_INTERFACE");
    EXPECT_EQ(fidius::status_name(fidius::Status::StreamEnd), "STREAM_END");
    EXPECT_EQ(fidius::status_name(fidius::Status::StreamMismatch), "STREAM_MISMATCH");
    EXPECT_EQ(fidius::status_name(fidius::Status::StreamInputFailed), "STREAM_INPUT_FAILED");
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::StreamEnd), 10u);
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::StreamMismatch), 316u);
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::StreamInputFailed), 317u);
    EXPECT_EQ(fidius::status_name(fidius::Status::WorkerUnavailable), "WORKER_UNAVAILABLE");
    EXPECT_EQ(fidius::status_name(fidius::Status::WorkerLost), "WORKER_LOST");
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::WorkerUnavailable), 134u);
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::WorkerLost), 318u);
    EXPECT_EQ(fidius::status_name(fidius::Status::Cancelled), "CANCELLED");
    EXPECT_EQ(static_cast<std::uint32_t>(fidius::Status::Cancelled), 319u);
    EXPECT_EQ(fidius::status_name(static_cast<fidius::Status>(123456)), "UNKNOWN");

    EXPECT_EQ(fidius::signatures_hash({"add:i64,i64->i64"}), 0xbe30b9d096b2c49eULL);
    EXPECT_EQ(fidius::signatures_hash({}), 0xcbf29ce484222325ULL);  // FNV-1a of nothing
    // The length is passed: the bytes after it are not part of the signature.
    const std::string padded = "add:i64,i64->i64 and more";
    EXPECT_EQ(fidius::signatures_hash({std::string_view(padded.data(), 16)}), 0xbe30b9d096b2c49eULL);
    EXPECT_FIDIUS_ERROR(fidius::signatures_hash({"\xff\xfe"}), fidius::Status::InvalidUtf8, "");
    EXPECT_FIDIUS_ERROR(fidius::signatures_hash({"nope"}), fidius::Status::InvalidInterface, "nope");
}

TEST_F(FidiusTest, ErrorsCarryStatusNameAndMessage) {
    fidius::Error error(fidius::Status::Timeout, "too slow");
    EXPECT_EQ(error.status(), fidius::Status::Timeout);
    EXPECT_EQ(error.message(), "too slow");
    EXPECT_STREQ(error.what(), "TIMEOUT: too slow");
    EXPECT_FALSE(error.plugin_code().has_value());
    EXPECT_FALSE(error.plugin_message().has_value());
    EXPECT_FALSE(error.plugin_details().has_value());
}

TEST_F(FidiusTest, FeaturesOfTheLibrary) {
    const std::uint32_t header_features = (FIDIUS_HOST_BUILT_WITH_WASM ? FIDIUS_HOST_FEATURE_WASM : 0u) |
                                          (FIDIUS_HOST_BUILT_WITH_PYTHON ? FIDIUS_HOST_FEATURE_PYTHON : 0u);
    EXPECT_EQ(fidius::features(), header_features);
    // The fixtures' library is built with both runtimes.
    EXPECT_TRUE(fidius::has_feature(fidius::Feature::Wasm));
    EXPECT_TRUE(fidius::has_feature(fidius::Feature::Python));
}

// The numbers behind a mismatch and a method index out of range.
TEST_F(FidiusTest, ErrorsCarryMismatchesAndMethodIndices) {
    const fidius::Error hash = error_of([&] {
        fidius::Builder().add_search_path(path_of("plugins")).set_interface_hash(0x1234).build().load("BasicCalculator");
    });
    EXPECT_EQ(hash.status(), fidius::Status::InterfaceHashMismatch);
    ASSERT_TRUE(hash.mismatch().has_value());
    EXPECT_EQ(hash.mismatch()->expected, 0x1234u);
    EXPECT_EQ(hash.mismatch()->found, kCalculatorHash);
    EXPECT_FALSE(hash.method_out_of_range().has_value());

    const fidius::Error strategy = error_of([&] {
        fidius::Builder()
            .add_search_path(path_of("plugins"))
            .set_buffer_strategy(fidius::BufferStrategy::Arena)
            .build()
            .load("BasicCalculator");
    });
    EXPECT_EQ(strategy.status(), fidius::Status::BufferStrategyMismatch);
    ASSERT_TRUE(strategy.mismatch().has_value());
    EXPECT_EQ(strategy.mismatch()->expected, static_cast<std::uint64_t>(fidius::BufferStrategy::Arena));
    EXPECT_EQ(strategy.mismatch()->found, static_cast<std::uint64_t>(fidius::BufferStrategy::PluginAllocated));

    // An interface of another version than the plugin's 2.
    std::string toml = interface_file("calculator.toml").to_toml();
    toml.replace(toml.find("version = 2"), 11, "version = 5");
    fidius::LoadOptions options;
    options.set_interface(fidius::Interface::from_toml(toml));
    const fidius::Error version = error_of([&] { host_for("plugins").load("BasicCalculator", options); });
    EXPECT_EQ(version.status(), fidius::Status::InterfaceVersionMismatch);
    ASSERT_TRUE(version.mismatch().has_value());
    EXPECT_EQ(version.mismatch()->expected, 5u);
    EXPECT_EQ(version.mismatch()->found, 2u);

    fidius::Plugin calc = host_for("plugins").load("BasicCalculator");
    const fidius::Error out_of_range = error_of([&] { calc.call(99); });
    EXPECT_EQ(out_of_range.status(), fidius::Status::MethodOutOfRange);
    ASSERT_TRUE(out_of_range.method_out_of_range().has_value());
    EXPECT_EQ(out_of_range.method_out_of_range()->index, 99u);
    EXPECT_EQ(out_of_range.method_out_of_range()->count, 8u);
    EXPECT_FALSE(out_of_range.mismatch().has_value());
    const fidius::Error by_json_index = error_of([&] {
        host_for("plugins").load("BasicCalculator", options_for("calculator.toml")).call_json_index(99, "[]");
    });
    ASSERT_TRUE(by_json_index.method_out_of_range().has_value());
    EXPECT_EQ(by_json_index.method_out_of_range()->index, 99u);

    // Other failures carry neither; nor do errors made in C++.
    const fidius::Error plugin_error = error_of([&] { calc.call(kDivide, encode_pair(1, 0)); });
    EXPECT_EQ(plugin_error.status(), fidius::Status::PluginError);
    EXPECT_FALSE(plugin_error.mismatch().has_value());
    EXPECT_FALSE(plugin_error.method_out_of_range().has_value());
    const fidius::Error made(fidius::Status::MethodOutOfRange, "by hand");
    EXPECT_FALSE(made.method_out_of_range().has_value());
}

// ---- builder options ---------------------------------------------------------

TEST_F(FidiusTest, BuilderRejectsBadOptions) {
    fidius::Builder builder;
    EXPECT_FIDIUS_ERROR(builder.add_search_path(""), fidius::Status::InvalidArgument, "");
    EXPECT_FIDIUS_ERROR(builder.add_search_path("bad\xff"), fidius::Status::InvalidUtf8, "'path'");
    EXPECT_FIDIUS_ERROR(builder.set_max_output_size(0), fidius::Status::InvalidArgument, "");
    EXPECT_FIDIUS_ERROR(builder.set_wasm_memory_limit(0), fidius::Status::InvalidArgument, "");
    EXPECT_FIDIUS_ERROR(builder.set_wasm_deadline(-1ms), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(builder.set_call_deadline(-1ms), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(builder.set_python_deadline(-1ms), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(fidius::LoadOptions().set_python_deadline(-1ms), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(builder.add_denied_capability(""), fidius::Status::InvalidArgument, "");
    const std::vector<std::uint8_t> short_key(31, 0);
    EXPECT_FIDIUS_ERROR(builder.add_trusted_key(short_key), fidius::Status::InvalidKey, "");
    // An empty key is a bad key, not a missing argument.
    EXPECT_FIDIUS_ERROR(builder.add_trusted_key(fidius::bytes_view()), fidius::Status::InvalidKey, "");
    EXPECT_FIDIUS_ERROR(builder.add_trusted_key_file(path_of("keys/nothing.public")), fidius::Status::FileNotFound,
                        "nothing.public");
    // A failed setter leaves the builder usable.
    builder.set_load_policy(fidius::LoadPolicy::Lenient).set_wasm_deadline(2s).set_require_signature(true);
    // Signatures required without a trusted key: the build fails and still
    // consumes the builder.
    EXPECT_FIDIUS_ERROR(builder.build(), fidius::Status::InvalidArgument, "no trusted key");
    EXPECT_FALSE(builder);
    EXPECT_FIDIUS_ERROR(builder.build(), fidius::Status::NullArgument, "");

    // Zero file size limits are refused when the host is built.
    EXPECT_FIDIUS_ERROR(fidius::Builder().set_max_library_size(0).build(), fidius::Status::InvalidArgument, "");
    EXPECT_FIDIUS_ERROR(fidius::Builder().set_max_package_size(0).build(), fidius::Status::InvalidArgument, "");
}

// ---- discovery -------------------------------------------------------------

TEST_F(FidiusTest, DiscoveryListsPluginsAndExplainsSkippedFiles) {
    const fidius::Discovery found = host_for("plugins").discover();
    ASSERT_EQ(found.plugins.size(), 2u);
    EXPECT_TRUE(found.skipped.empty());
    bool saw_basic = false;
    for (const fidius::PluginInfo &info : found.plugins) {
        EXPECT_EQ(info.interface_name, "Calculator");
        EXPECT_EQ(info.interface_version, 2u);
        EXPECT_EQ(info.interface_hash, kCalculatorHash);
        EXPECT_EQ(info.runtime, fidius::Runtime::Cdylib);
        EXPECT_EQ(info.buffer_strategy, fidius::BufferStrategy::PluginAllocated);
        EXPECT_NE(info.path.find("libcalc_plugin.so"), std::string::npos);
        if (info.name == "BasicCalculator") {
            saw_basic = true;
            EXPECT_EQ(info.capabilities, 1u);
            EXPECT_TRUE(info.has_capability(0));
            EXPECT_FALSE(info.has_capability(64));
        }
    }
    EXPECT_TRUE(saw_basic);

    // Skipped files come with the path, a status and a message naming the file.
    const fidius::Discovery crafted = host_for("crafted").discover();
    ASSERT_GE(crafted.skipped.size(), 10u);
    bool saw_magic = false;
    for (const fidius::SkippedEntry &entry : crafted.skipped) {
        EXPECT_NE(entry.message.find(entry.path), std::string::npos) << entry.message;
        if (entry.path.find("libdefect_magic.so") != std::string::npos) {
            saw_magic = true;
            EXPECT_EQ(entry.status, fidius::Status::InvalidMagic);
        }
    }
    EXPECT_TRUE(saw_magic);

    // Lenient: a library with one bad descriptor still offers its good plugins.
    auto lists_second_bad = [](const fidius::Discovery &d) {
        for (const fidius::PluginInfo &info : d.plugins)
            if (info.path.find("libdefect_second_bad.so") != std::string::npos) return true;
        return false;
    };
    EXPECT_FALSE(lists_second_bad(crafted));
    const fidius::Discovery lenient = fidius::Builder()
                                          .add_search_path(path_of("crafted"))
                                          .set_load_policy(fidius::LoadPolicy::Lenient)
                                          .build()
                                          .discover();
    EXPECT_TRUE(lists_second_bad(lenient));
    EXPECT_EQ(lenient.plugins.size(), crafted.plugins.size() + 1);

    // A missing search path is reported, not fatal.
    const fidius::Discovery missing = host_for("no-such-dir").discover();
    EXPECT_TRUE(missing.plugins.empty());
    ASSERT_EQ(missing.skipped.size(), 1u);
    EXPECT_NE(missing.skipped[0].path.find("no-such-dir"), std::string::npos);
}

// ---- cdylib plugins: raw calls -------------------------------------------------

TEST_F(FidiusTest, RawCallsOnACdylibPlugin) {
    fidius::Plugin calc;
    {
        fidius::Host host = host_for("plugins");
        calc = host.load("BasicCalculator");
    }  // plugins outlive their host
    ASSERT_TRUE(calc);
    EXPECT_EQ(calc.method_count(), 8u);
    EXPECT_EQ(calc.info().name, "BasicCalculator");
    EXPECT_EQ(calc.info().interface_hash, kCalculatorHash);

    EXPECT_EQ(decode_i64(calc.call(kAdd, encode_pair(3, 7))), 10);
    const fidius::Bytes greeting = calc.call(kGreet, encode_string("hello"));
    EXPECT_TRUE(greeting == encode_string("Hello, hello!"));
    const fidius::Bytes reversed = calc.call(kReverse, fidius::bytes_view(std::string_view("raw!")));
    EXPECT_EQ(reversed.to_string(), "!war");
    EXPECT_TRUE(calc.call(kPing).empty());
    EXPECT_EQ(decode_i64(calc.call(kMultiply, encode_pair(6, 7))), 42);

    const std::array<std::uint8_t, 3> garbage{'a', 'b', 'c'};
    EXPECT_FIDIUS_ERROR(calc.call(kAdd, garbage), fidius::Status::PluginSerialization, "");
    EXPECT_FIDIUS_ERROR(calc.call(8), fidius::Status::MethodOutOfRange, "8 methods");
    // JSON calls need an interface, and this plugin was loaded without one.
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1, 2]"), fidius::Status::NoInterface, "without an interface");
    EXPECT_FIDIUS_ERROR(calc.loaded_interface(), fidius::Status::NoInterface, "BasicCalculator");
}

TEST_F(FidiusTest, PluginErrorsPanicsAndMissingMethods) {
    fidius::Host host = host_for("plugins");
    fidius::Plugin calc = host.load("BasicCalculator");

    // divide(1, 0): the plugin's own error with code, message and details.
    try {
        calc.call(kDivide, encode_pair(1, 0));
        ADD_FAILURE() << "divide by zero did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.status(), fidius::Status::PluginError);
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("DIV_ZERO"));
        EXPECT_EQ(error.plugin_message(), std::optional<std::string>("cannot divide 1 by zero"));
        EXPECT_EQ(error.plugin_details(), std::optional<std::string>("{\"dividend\":1}"));
        EXPECT_NE(error.message().find("BasicCalculator"), std::string::npos);
        EXPECT_NE(std::string(error.what()).find("PLUGIN_ERROR"), std::string::npos);
    }

    // boom: a panic, and the plugin stays usable.
    const fidius::Error panic = error_of([&] { calc.call(kBoom); });
    EXPECT_EQ(panic.status(), fidius::Status::PluginPanic);
    EXPECT_NE(panic.message().find("panicked on purpose"), std::string::npos);
    EXPECT_FALSE(panic.plugin_code().has_value());
    EXPECT_EQ(decode_i64(calc.call(kAdd, encode_pair(20, 22))), 42);

    // PartialCalculator lacks the optional multiply.
    fidius::Plugin partial = host.load_path(path_of("plugins/libcalc_plugin.so"), "PartialCalculator");
    EXPECT_FALSE(partial.has_capability(0));
    EXPECT_TRUE(calc.has_capability(0));
    EXPECT_FIDIUS_ERROR(partial.call(kMultiply, encode_pair(6, 7)), fidius::Status::NotImplemented, "");
}

TEST_F(FidiusTest, LoadFailures) {
    fidius::Host host = host_for("plugins");
    EXPECT_FIDIUS_ERROR(host.load("Nobody"), fidius::Status::PluginNotFound, "'Nobody'");
    // The name is passed with its length: a prefix of a real name is not it.
    const std::string_view prefix("BasicCalculator", 5);
    EXPECT_FIDIUS_ERROR(host.load(prefix), fidius::Status::PluginNotFound, "'Basic'");
    EXPECT_FIDIUS_ERROR(host.load_path(path_of("plugins/libnothing.so")), fidius::Status::FileNotFound,
                        "libnothing.so");
    EXPECT_FIDIUS_ERROR(host.load_path(path_of("plugins/libcalc_plugin.so")), fidius::Status::AmbiguousPlugin, "");
    EXPECT_FIDIUS_ERROR(host.load_path(path_of("keys/trusted.public")), fidius::Status::NotALibrary, "");
    EXPECT_FIDIUS_ERROR(host.load_path(path_of("crafted/libdefect_magic.so")), fidius::Status::InvalidMagic,
                        "libdefect_magic.so");

    // What the host expects of every plugin.
    fidius::Host wrong_hash = fidius::Builder().add_search_path(path_of("plugins")).set_interface_hash(1).build();
    EXPECT_FIDIUS_ERROR(wrong_hash.load("BasicCalculator"), fidius::Status::InterfaceHashMismatch,
                        "found 0x0271e9b7d21d10f1");
    fidius::Host right_hash =
        fidius::Builder().add_search_path(path_of("plugins")).set_interface_hash(kCalculatorHash).build();
    EXPECT_EQ(right_hash.load("BasicCalculator").info().name, "BasicCalculator");
    fidius::Host arena_only = fidius::Builder()
                                  .add_search_path(path_of("plugins"))
                                  .set_buffer_strategy(fidius::BufferStrategy::Arena)
                                  .build();
    EXPECT_FIDIUS_ERROR(arena_only.load("BasicCalculator"), fidius::Status::BufferStrategyMismatch, "Arena");

    // The output limit.
    fidius::Host small = fidius::Builder().add_search_path(path_of("plugins")).set_max_output_size(4).build();
    fidius::Plugin calc = small.load("BasicCalculator");
    EXPECT_FIDIUS_ERROR(calc.call(kReverse, fidius::bytes_view(std::string_view("abcdef"))),
                        fidius::Status::OutputTooLarge, "limit of 4 bytes");
    EXPECT_EQ(calc.call(kReverse, fidius::bytes_view(std::string_view("abcd"))).size(), 4u);
}

TEST_F(FidiusTest, LibrarySizeLimit) {
    const std::string library = path_of("plugins/libcalc_plugin.so");
    fidius::Host small = fidius::Builder().set_max_library_size(1000).build();
    EXPECT_FIDIUS_ERROR(small.load_path(library, "BasicCalculator"), fidius::Status::FileTooLarge,
                        "limit of 1000 bytes");
    // The default limit takes it.
    fidius::Plugin calc = fidius::Builder().build().load_path(library, "BasicCalculator");
    EXPECT_EQ(decode_i64(calc.call(kAdd, encode_pair(1, 2))), 3);
}

// A FIFO where a library is expected is refused without being read (a read
// would wait for a writer forever).
TEST_F(FidiusTest, FifoIsNotARegularFile) {
    TempDir dir;
    const std::string fifo = (dir.path() / "libx.so").string();
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FIDIUS_ERROR(fidius::Builder().build().load_path(fifo), fidius::Status::NotARegularFile, "libx.so");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST_F(FidiusTest, Signatures) {
    fidius::Host signed_host = fidius::Builder()
                                   .add_search_path(path_of("signed"))
                                   .set_require_signature(true)
                                   .add_trusted_key_file(path_of("keys/trusted.public"))
                                   .build();
    EXPECT_FIDIUS_ERROR(signed_host.load_path(path_of("plugins/libcalc_plugin.so"), "BasicCalculator"),
                        fidius::Status::SignatureRequired, "libcalc_plugin.so");
    EXPECT_FIDIUS_ERROR(signed_host.load_path(path_of("signed/libmarker.so")), fidius::Status::SignatureInvalid, "");
    EXPECT_EQ(decode_i64(signed_host.load("BasicCalculator").call(kAdd, encode_pair(1, 2))), 3);

    // The same key as raw bytes.
    const std::vector<std::uint8_t> key = read_bytes(path_of("keys/trusted.public"));
    ASSERT_EQ(key.size(), 32u);
    fidius::Host raw_key_host = fidius::Builder()
                                    .add_search_path(path_of("signed"))
                                    .set_require_signature(true)
                                    .add_trusted_key(key)
                                    .build();
    EXPECT_EQ(raw_key_host.load("BasicCalculator").info().name, "BasicCalculator");

    // A signature by a key the host does not trust.
    fidius::Host untrusting = fidius::Builder()
                                  .set_require_signature(true)
                                  .add_trusted_key_file(path_of("keys/untrusted.public"))
                                  .build();
    EXPECT_FIDIUS_ERROR(untrusting.load_path(path_of("signed/libcalc_plugin.so"), "BasicCalculator"),
                        fidius::Status::SignatureInvalid, "");
}

// verify_path checks signatures without loading anything.
TEST_F(FidiusTest, VerifyPath) {
    // The key of a host that does not require signatures is enough.
    const fidius::Host host = fidius::Builder().add_trusted_key_file(path_of("keys/trusted.public")).build();
    host.verify_path(path_of("signed/libcalc_plugin.so"));
    host.verify_path(path_of("wasm-signed/calc"));
    host.verify_path(path_of("python-signed/calc"));
    EXPECT_FIDIUS_ERROR(host.verify_path(path_of("plugins/libcalc_plugin.so")), fidius::Status::SignatureRequired,
                        "libcalc_plugin.so.sig");
    EXPECT_FIDIUS_ERROR(host.verify_path(path_of("wasm/calc")), fidius::Status::SignatureRequired, "package.sig");
    // Signed, but by a key the host does not trust.
    EXPECT_FIDIUS_ERROR(host.verify_path(path_of("signed/libmarker.so")), fidius::Status::SignatureInvalid,
                        "libmarker.so");
    EXPECT_FIDIUS_ERROR(host.verify_path(path_of("signed/nothing.so")), fidius::Status::FileNotFound, "nothing.so");
    // The path is passed with its length.
    const std::string padded = path_of("signed/libcalc_plugin.so") + ".and more";
    host.verify_path(std::string_view(padded.data(), padded.size() - 9));

    // A signed library with one byte changed no longer verifies.
    TempDir dir;
    const std::string library = (dir.path() / "libcalc_plugin.so").string();
    std::filesystem::copy_file(path_of("signed/libcalc_plugin.so.sig"), library + ".sig");
    std::vector<std::uint8_t> bytes = read_bytes(path_of("signed/libcalc_plugin.so"));
    ASSERT_FALSE(bytes.empty());
    bytes[bytes.size() / 2] ^= 0xff;
    {
        std::ofstream out(library, std::ios::binary);
        out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    EXPECT_FIDIUS_ERROR(host.verify_path(library), fidius::Status::SignatureInvalid, "tampered");

    // A host without a trusted key cannot verify.
    EXPECT_FIDIUS_ERROR(fidius::Builder().build().verify_path(path_of("signed/libcalc_plugin.so")),
                        fidius::Status::InvalidArgument, "no trusted key");
    EXPECT_FIDIUS_ERROR(fidius::Host().verify_path(path_of("signed/libcalc_plugin.so")),
                        fidius::Status::NullArgument, "");
}

TEST_F(FidiusTest, MetadataAndDiagnostics) {
    fidius::Plugin calc = host_for("plugins").load("BasicCalculator");
    const std::vector<fidius::MetadataEntry> trait = calc.trait_metadata();
    ASSERT_EQ(trait.size(), 2u);
    EXPECT_EQ(trait[1].key, "category");
    EXPECT_EQ(trait[1].value, "math");
    const std::vector<fidius::MetadataEntry> add = calc.method_metadata(kAdd);
    ASSERT_EQ(add.size(), 2u);
    EXPECT_EQ(add[0].key, "doc");
    EXPECT_EQ(add[0].value, "adds two integers");
    EXPECT_TRUE(calc.method_metadata(kGreet).empty());
    EXPECT_FIDIUS_ERROR(calc.method_metadata(8), fidius::Status::MethodOutOfRange, "");
    EXPECT_TRUE(calc.diagnostics().empty());
    EXPECT_TRUE(calc.denied_requests().empty());
}

// ---- interfaces and JSON calls ----------------------------------------------

TEST_F(FidiusTest, InterfaceBuilderAndAccessors) {
    fidius::InterfaceBuilder builder("Calculator", 2);
    builder.set_wasm_export("fidius:calculator/calculator@0.1.0")
        .add_method("add: i64, i64 -> i64")  // any spacing
        .add_method("greet:String->String")
        .add_method("divide:i64,i64->Result<i64,PluginError>")
        .add_method("describe:bool,f64,Vec<String>,Option < String >->String")
        .add_method("boom:->String")
        .add_method("reverse:Vec<u8>->Vec<u8>", fidius::MethodFlags::Raw)
        .add_method("ping:->")
        .add_method("multiply:i64,i64->i64", fidius::MethodFlags::Optional);
    const fidius::Interface calc = builder.build();

    EXPECT_EQ(calc.hash(), kCalculatorHash);
    EXPECT_EQ(calc.name(), "Calculator");
    EXPECT_EQ(calc.version(), 2u);
    EXPECT_EQ(calc.wasm_export(), std::optional<std::string>("fidius:calculator/calculator@0.1.0"));
    EXPECT_EQ(calc.method_count(), 8u);
    EXPECT_EQ(calc.method_signature(5), "reverse:Vec < u8 >->Vec < u8 >!raw");
    EXPECT_FIDIUS_ERROR(calc.method_signature(8), fidius::Status::MethodOutOfRange, "no method 8");
    EXPECT_EQ(calc.method_flags(5), fidius::MethodFlags::Raw);
    EXPECT_TRUE(fidius::has_flag(calc.method_flags(7), fidius::MethodFlags::Optional));
    EXPECT_EQ(calc.method_flags(99), fidius::MethodFlags::None);
    EXPECT_EQ(calc.method_index("ping"), 6u);
    EXPECT_EQ(calc.method_index(std::string_view("pingpong", 4)), 6u);
    EXPECT_FIDIUS_ERROR(calc.method_index("pong"), fidius::Status::UnknownMethod, "no method 'pong'");

    // Interface text round-trips.
    const std::string toml = calc.to_toml();
    EXPECT_NE(toml.find("hash = \"0x0271e9b7d21d10f1\""), std::string::npos);
    const fidius::Interface again = fidius::Interface::from_toml(toml);
    EXPECT_EQ(again.hash(), kCalculatorHash);
    EXPECT_EQ(again.method_flags(7), fidius::MethodFlags::Optional);

    // Bad methods are refused when added; the builder stays usable.
    EXPECT_FIDIUS_ERROR(builder.add_method("add:i64->i64"), fidius::Status::InvalidInterface, "declared twice");
    EXPECT_FIDIUS_ERROR(builder.add_method("nope"), fidius::Status::InvalidInterface, "'nope'");
    EXPECT_FIDIUS_ERROR(builder.add_method("f:->()", static_cast<fidius::MethodFlags>(64)),
                        fidius::Status::InvalidArgument, "flag");
    EXPECT_FIDIUS_ERROR(builder.add_type("struct {"), fidius::Status::InvalidInterface, "type declaration");
    EXPECT_FIDIUS_ERROR(builder.set_wasm_export("has space"), fidius::Status::InvalidInterface, "");

    // An unknown type fails the build, naming it; declaring it fixes that.
    builder.add_method("at:Point->Point", fidius::MethodFlags::Optional);
    EXPECT_FIDIUS_ERROR(builder.build(), fidius::Status::InvalidInterface, "unknown type `Point`");
    builder.add_type("struct Point { x: f64, y: f64 }");
    EXPECT_EQ(builder.build().hash(), kCalculatorHash);  // optional methods are not hashed

    EXPECT_FIDIUS_ERROR(fidius::InterfaceBuilder("not an ident", 1), fidius::Status::InvalidInterface,
                        "not an identifier");
}

TEST_F(FidiusTest, InterfaceFiles) {
    EXPECT_EQ(interface_file("calculator.toml").hash(), kCalculatorHash);
    EXPECT_EQ(interface_file("type_echo.toml").method_count(), 20u);
    EXPECT_FALSE(interface_file("echo.toml").name().empty());
    EXPECT_FIDIUS_ERROR(interface_file("missing.toml"), fidius::Status::FileNotFound, "missing.toml");
    EXPECT_FIDIUS_ERROR(fidius::Interface::from_toml("name = \"X\"\nversion = \"one\"\n"),
                        fidius::Status::InvalidInterface, "not a valid interface file");
    EXPECT_FIDIUS_ERROR(fidius::Interface::from_toml("name = \"X\"\nversion = 1\nhash = \"0x5\"\n"),
                        fidius::Status::InterfaceHashMismatch, "0x0000000000000005");
}

TEST_F(FidiusTest, JsonCallsOnACdylibPlugin) {
    fidius::Host host = host_for("plugins");
    fidius::LoadOptions options = options_for("calculator.toml");
    fidius::Plugin calc = host.load("BasicCalculator", options);
    fidius::Plugin partial = host.load("PartialCalculator", options);
    EXPECT_EQ(calc.loaded_interface().hash(), kCalculatorHash);

    EXPECT_EQ(calc.call_json("add", "[3, 7]"), "10");
    EXPECT_EQ(calc.call_json("greet", "[\"x\"]"), "\"Hello, x!\"");
    EXPECT_EQ(calc.call_json("describe", "[false, 2.5, [\"x\", \"y\"], \"n\"]"),
              "\"flag=false ratio=2.5 tags=x+y note=n\"");
    EXPECT_EQ(calc.call_json("ping", "[]"), "null");
    EXPECT_EQ(calc.call_json("reverse", "[[1, 2, 3]]"), "[3,2,1]");
    EXPECT_EQ(calc.call_json_index(kMultiply, "[6, 7]"), "42");
    // Explicit lengths: the bytes after each view are not read.
    EXPECT_EQ(calc.call_json(std::string_view("address", 3), std::string_view("[1, 2]xyz", 6)), "3");
    EXPECT_EQ(calc.call_json_index(kAdd, std::string_view("[1, 2]xyz", 6)), "3");

    try {
        calc.call_json("divide", "[1, 0]");
        ADD_FAILURE() << "divide by zero did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("DIV_ZERO"));
        EXPECT_EQ(error.plugin_details(), std::optional<std::string>("{\"dividend\":1}"));
    }
    EXPECT_FIDIUS_ERROR(calc.call_json("boom", "[]"), fidius::Status::PluginPanic, "panicked");
    EXPECT_FIDIUS_ERROR(partial.call_json("multiply", "[6, 7]"), fidius::Status::NotImplemented, "multiply");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1, 2"), fidius::Status::InvalidJson, "not valid JSON");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1]"), fidius::Status::ArgumentMismatch,
                        "expected 2 argument(s) (i64, i64), found 1");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1, \"2\"]"), fidius::Status::ArgumentMismatch, "argument 2");
    EXPECT_FIDIUS_ERROR(calc.call_json("nope", "[]"), fidius::Status::UnknownMethod, "no method 'nope'");
    EXPECT_FIDIUS_ERROR(calc.call_json_index(8, "[]"), fidius::Status::MethodOutOfRange, "out of range");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[\"\xff\"]"), fidius::Status::InvalidUtf8, "args_json");
    EXPECT_EQ(calc.call_json("add", "[20, 22]"), "42");  // still fine after all that

    // Removing the interface from the options: loads, but no JSON calls.
    options.clear_interface();
    EXPECT_FIDIUS_ERROR(host.load("BasicCalculator", options).call_json("add", "[1, 2]"),
                        fidius::Status::NoInterface, "");

    // An interface of another version.
    std::string toml = interface_file("calculator.toml").to_toml();
    toml.replace(toml.find("version = 2"), 11, "version = 5");
    options.set_interface(fidius::Interface::from_toml(toml));
    EXPECT_FIDIUS_ERROR(host.load("BasicCalculator", options), fidius::Status::InterfaceVersionMismatch,
                        "expected 5, found 2");
}

// ---- WebAssembly plugins -----------------------------------------------------

TEST_F(FidiusTest, WasmCalculator) {
    fidius::Host host = host_for("wasm");
    // WASM plugins need an interface.
    EXPECT_FIDIUS_ERROR(host.load("WasmCalculator"), fidius::Status::NoInterface, "");
    fidius::Plugin calc = host.load("WasmCalculator", options_for("calculator.toml"));
    EXPECT_EQ(calc.info().runtime, fidius::Runtime::Wasm);
    EXPECT_EQ(calc.info().interface_hash, kCalculatorHash);
    EXPECT_TRUE(calc.diagnostics().empty());

    EXPECT_EQ(calc.call_json("add", "[3, 7]"), "10");
    EXPECT_EQ(calc.call_json("greet", "[\"C++\"]"), "\"Hello, C++!\"");
    const fidius::Bytes reversed = calc.call(kReverse, fidius::bytes_view(std::string_view("fidius")));
    EXPECT_EQ(reversed.to_string(), "suidif");
    EXPECT_EQ(decode_i64(calc.call(kAdd, encode_pair(3, 7))), 10);
    try {
        calc.call_json("divide", "[1, 0]");
        ADD_FAILURE() << "divide by zero did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("DIV_ZERO"));
    }
    // A trap; the next call runs on a fresh instance.
    EXPECT_FIDIUS_ERROR(calc.call_json("boom", "[]"), fidius::Status::PluginTrap, "trapped");
    EXPECT_EQ(calc.call_json("add", "[20, 22]"), "42");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1, \"x\"]"), fidius::Status::ArgumentMismatch, "argument 2");

    std::size_t wasm_plugins = 0;
    for (const fidius::PluginInfo &info : host.discover().plugins)
        if (info.runtime == fidius::Runtime::Wasm) wasm_plugins++;
    EXPECT_EQ(wasm_plugins, 5u);  // calc, hostile, fetch, dialer, stream
}

TEST_F(FidiusTest, WasmDeadlineMemoryLimitAndSandbox) {
    fidius::Host host = fidius::Builder()
                            .add_search_path(path_of("wasm"))
                            .set_wasm_deadline(0ms)  // none by default; the load sets one
                            .set_wasm_memory_limit(16u << 20)
                            .add_denied_capability("env")
                            .set_allow_unsigned_precompiled(false)
                            .build();
    fidius::LoadOptions options = options_for("hostile.toml");
    options.set_wasm_deadline(200ms);
    EXPECT_FIDIUS_ERROR(options.set_wasm_memory_limit(0), fidius::Status::InvalidArgument, "");
    fidius::Plugin hostile = host.load("HostileGuest", options);

    EXPECT_EQ(hostile.call_json("counter", "[]"), "1");
    EXPECT_EQ(hostile.call_json("counter", "[]"), "2");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FIDIUS_ERROR(hostile.call_json("spin", "[]"), fidius::Status::Timeout, "deadline");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_EQ(hostile.call_json("counter", "[]"), "1");  // a fresh instance after the timeout
    EXPECT_FIDIUS_ERROR(hostile.call_json("hog", "[64]"), fidius::Status::MemoryLimit, "16777216");
    EXPECT_EQ(hostile.call_json("hog", "[2]"), "2");
    EXPECT_GE(hostile.memory_high_water(), 2u << 20);  // grown, never past the cap
    EXPECT_LE(hostile.memory_high_water(), 16u << 20);
    EXPECT_FIDIUS_ERROR(hostile.call_json("read_file", "[\"/etc/passwd\"]"), fidius::Status::PluginError,
                        "returned an error");
    EXPECT_FIDIUS_ERROR(hostile.call_json("crash", "[]"), fidius::Status::PluginTrap, "crash");

    // A load may raise the host's memory cap.
    options.set_wasm_memory_limit(128u << 20);
    fidius::Plugin roomy = host.load("HostileGuest", options);
    EXPECT_EQ(roomy.call_json("hog", "[64]"), "64");
}

TEST_F(FidiusTest, WasmFreshInstancePerCall) {
    fidius::Host host =
        fidius::Builder().add_search_path(path_of("wasm")).set_wasm_fresh_instance_per_call(true).build();
    fidius::LoadOptions options = options_for("hostile.toml");
    fidius::Plugin fresh = host.load("HostileGuest", options);
    EXPECT_EQ(fresh.call_json("counter", "[]"), "1");
    EXPECT_EQ(fresh.call_json("counter", "[]"), "1");  // no state carried over
    options.set_wasm_fresh_instance_per_call(false);
    fidius::Plugin persistent = host.load("HostileGuest", options);
    EXPECT_EQ(persistent.call_json("counter", "[]"), "1");
    EXPECT_EQ(persistent.call_json("counter", "[]"), "2");
}

TEST_F(FidiusTest, WasmInstancePool) {
    fidius::Host host = fidius::Builder().add_search_path(path_of("wasm")).set_wasm_instance_pool(1).build();
    fidius::LoadOptions options = options_for("hostile.toml");
    {
        fidius::Plugin first = host.load("HostileGuest", options);
        EXPECT_EQ(first.call_json("counter", "[]"), "1");
        EXPECT_FIDIUS_ERROR(host.load("HostileGuest", options), fidius::Status::InstancePoolExhausted, "pool");
    }  // the first plugin's slot is free again
    fidius::Plugin second = host.load("HostileGuest", options);
    EXPECT_EQ(second.call_json("counter", "[]"), "1");
    EXPECT_EQ(second.call_json("counter", "[]"), "2");
}

TEST_F(FidiusTest, WasmPackageSizeLimit) {
    const fidius::LoadOptions options = options_for("calculator.toml");
    fidius::Host small = fidius::Builder().set_max_package_size(1000).build();
    EXPECT_FIDIUS_ERROR(small.load_path(path_of("wasm/calc"), options), fidius::Status::FileTooLarge, "1000");
    fidius::Plugin calc = fidius::Builder().build().load_path(path_of("wasm/calc"), options);
    EXPECT_EQ(calc.call_json("add", "[1, 2]"), "3");
}

TEST_F(FidiusTest, WasmSleepEndsAtTheDeadline) {
    fidius::Host host = fidius::Builder().add_search_path(path_of("wasm")).build();
    fidius::LoadOptions options = options_for("hostile.toml");
    options.set_wasm_deadline(200ms);
    fidius::Plugin hostile = host.load("HostileGuest", options);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FIDIUS_ERROR(hostile.call_json("nap", "[3600000]"), fidius::Status::Timeout, "deadline");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_EQ(hostile.call_json("counter", "[]"), "1");
}

TEST_F(FidiusTest, PrecompiledComponents) {
    const std::vector<std::uint8_t> component = read_bytes(path_of("wasm/calc/calc_component.wasm"));
    ASSERT_FALSE(component.empty());
    const fidius::Bytes cwasm = fidius::precompile_component(component);
    EXPECT_FALSE(cwasm.empty());
    EXPECT_FIDIUS_ERROR(fidius::precompile_component(fidius::bytes_view(std::string_view("nope"))),
                        fidius::Status::InvalidComponent, "precompile");
    EXPECT_FIDIUS_ERROR(fidius::precompile_component(fidius::bytes_view()), fidius::Status::InvalidComponent, "");

    // A package directory with the precompiled component next to the original.
    namespace fs = std::filesystem;
    char dir_template[] = "/tmp/fidius-cpp-cwasm-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    const fs::path dir = dir_template;
    fs::copy_file(path_of("wasm/calc/package.toml"), dir / "package.toml");
    fs::copy_file(path_of("wasm/calc/calc_component.wasm"), dir / "calc_component.wasm");
    {
        std::ofstream out(dir / "calc_component.cwasm", std::ios::binary);
        out.write(reinterpret_cast<const char *>(cwasm.data()), static_cast<std::streamsize>(cwasm.size()));
    }
    const fidius::LoadOptions options = options_for("calculator.toml");

    // Unsigned precompiled code is not used unless the host allows it.
    fidius::Plugin compiled = fidius::Builder().build().load_path(dir.string(), options);
    const std::vector<std::string> notes = compiled.diagnostics();
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find("not signed"), std::string::npos) << notes[0];
    EXPECT_EQ(compiled.call_json("add", "[1, 2]"), "3");

    fidius::Plugin precompiled =
        fidius::Builder().set_allow_unsigned_precompiled(true).build().load_path(dir.string(), options);
    EXPECT_TRUE(precompiled.diagnostics().empty());
    EXPECT_EQ(precompiled.call_json("add", "[2, 2]"), "4");
    fs::remove_all(dir);
}

TEST_F(FidiusTest, WasmCompileCache) {
    namespace fs = std::filesystem;
    const fs::path root = fs::temp_directory_path() / ("fidius-cpp-compile-cache-" + std::to_string(getpid()));
    const fs::path cache = root / "cache";
    fs::remove_all(root);
    const fidius::LoadOptions options = options_for("calculator.toml");
    // Two hosts, as two processes would be: the first compiles and keeps
    // the component, the second reads it.
    for (int round = 0; round < 2; round++) {
        fidius::Plugin calc = fidius::Builder()
                                  .set_wasm_compile_cache(cache.string())
                                  .build()
                                  .load_path(path_of("wasm/calc"), options);
        EXPECT_TRUE(calc.diagnostics().empty()) << round;
        EXPECT_EQ(calc.call_json("add", "[40, 2]"), "42");
        int entries = 0;
        for (const auto &entry : fs::directory_iterator(cache))
            entries += entry.path().extension() == ".entry";
        EXPECT_EQ(entries, 1) << round;
    }
    fs::permissions(cache, fs::perms::all);
    EXPECT_FIDIUS_ERROR(fidius::Builder().set_wasm_compile_cache(cache.string()), fidius::Status::InvalidArgument,
                        "others may write it");
    fs::remove_all(root);
}

TEST_F(FidiusTest, Archives) {
    namespace fs = std::filesystem;
    char dir_template[] = "/tmp/fidius-cpp-archives-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    const fs::path dest = dir_template;
    const fidius::Host host = fidius::Builder().build();
    const std::string dir = host.unpack_archive(path_of("archives/calc.fid"), dest.string());
    EXPECT_EQ(dir, (dest / "WasmCalculator-0.1.0").string());
    const fidius::LoadOptions options = options_for("calculator.toml");
    for (const std::string &path : {dir, path_of("archives/calc.fid")}) {
        fidius::Plugin calc = host.load_path(path, options);
        EXPECT_EQ(calc.call_json("add", "[40, 2]"), "42");
    }
    EXPECT_FIDIUS_ERROR(host.unpack_archive(path_of("archives/calc.fid"), dest.string()),
                        fidius::Status::InvalidArgument, "already exists");
    fs::remove_all(dest);
}

// ---- configured instances ----------------------------------------------------

// bincode of ScaleConfig{factor, label, mode} (mode 0 Quiet, 1 Loud).
std::vector<std::uint8_t> scale_config(std::int64_t factor, const std::string &label, std::uint32_t mode) {
    std::vector<std::uint8_t> out;
    put_i64(out, factor);
    put_i64(out, static_cast<std::int64_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    for (int i = 0; i < 4; i++) out.push_back(static_cast<std::uint8_t>(mode >> (8 * i)));
    return out;
}

TEST_F(FidiusTest, ConfiguredInstances) {
    EXPECT_EQ(fidius::Interface::from_file(path_of("interfaces/scaler.toml")).config_type(), "ScaleConfig");
    std::vector<std::string> paths = {"configured/libscaler_plugin.so"};
    if (fidius::has_feature(fidius::Feature::Wasm)) paths.push_back("configured/wasm-scaler");
    if (fidius::has_feature(fidius::Feature::Python)) paths.push_back("configured/python-scaler");
    for (const std::string &relative : paths) {
        SCOPED_TRACE(relative);
        const fidius::Host host = fidius::Builder().build();
        fidius::LoadOptions options = options_for("scaler.toml");
        EXPECT_FIDIUS_ERROR(host.load_path(path_of(relative), options), fidius::Status::ConfigRequired, "ScaleConfig");
        options.set_config_json(R"({"factor": 3, "label": "abc", "mode": "Loud"})");
        fidius::Plugin first = host.load_path(path_of(relative), options);
        EXPECT_EQ(first.call_json("scale", "[5]"), "15");
        EXPECT_EQ(first.call_json("label", "[]"), "\"ABC\"");
        EXPECT_EQ(first.call_json("bump", "[]"), "1");
        const std::vector<std::uint8_t> config = scale_config(-2, "xy", 0);
        fidius::Plugin second = first.new_instance(fidius::bytes_view(config.data(), config.size()));
        EXPECT_EQ(second.call_json("scale", "[5]"), "-10");
        EXPECT_EQ(second.call_json("bump", "[]"), "1");
        EXPECT_EQ(first.call_json("bump", "[]"), "2");
        EXPECT_FIDIUS_ERROR(first.new_instance_json(R"({"factor": 1})"), fidius::Status::ConfigInvalid, "label");
        fidius::Plugin third = first.new_instance_json(R"({"factor": 1, "label": "q", "mode": "Quiet"})");
        first = fidius::Plugin();  // the other instances outlive it
        EXPECT_EQ(third.call_json("label", "[]"), "\"q\"");
        EXPECT_EQ(second.call_json("bump", "[]"), "2");
    }
}

TEST_F(FidiusTest, HostImports) {
    const fidius::Plugin plugin = host_for("hostcall").load("LedgerBookkeeper");
    const std::vector<fidius::HostImport> imports = plugin.host_imports();
    ASSERT_EQ(imports.size(), 1u);
    EXPECT_EQ(imports[0].name, "Ledger");
    EXPECT_EQ(imports[0].version, 3u);
    EXPECT_EQ(imports[0].hash, fidius::Interface::from_file(path_of("interfaces/ledger.toml")).hash());
    EXPECT_TRUE(host_for("plugins").load("BasicCalculator").host_imports().empty());
}

TEST_F(FidiusTest, PythonConfigurationRefused) {
    ASSERT_TRUE(fidius::has_feature(fidius::Feature::Python));
    fidius::LoadOptions options = options_for("scaler.toml");
    options.set_config_json(R"({"factor": 0, "label": "z", "mode": "Quiet"})");
    const fidius::Error error =
        error_of([&] { fidius::Builder().build().load_path(path_of("configured/python-scaler"), options); });
    EXPECT_EQ(error.status(), fidius::Status::ConfigRejected) << error.what();
    EXPECT_EQ(error.plugin_code(), "ZERO_FACTOR");
}

// ---- Python plugins ----------------------------------------------------------

TEST_F(FidiusTest, PythonPlugins) {
    fidius::Host host = host_for("python");
    EXPECT_FIDIUS_ERROR(host.load("PyCalculator"), fidius::Status::NoInterface, "");
    const fidius::LoadOptions options = options_for("calculator.toml");
    fidius::Plugin calc = host.load("PyCalculator", options);
    EXPECT_EQ(calc.info().runtime, fidius::Runtime::Python);
    EXPECT_EQ(calc.info().interface_hash, kCalculatorHash);
    EXPECT_EQ(calc.call_json("add", "[3, 7]"), "10");
    EXPECT_EQ(calc.call_json("greet", "[\"x\"]"), "\"Hello, x!\"");
    EXPECT_EQ(calc.call_json("multiply", "[6, 7]"), "42");
    EXPECT_EQ(decode_i64(calc.call(kAdd, encode_pair(3, 7))), 10);
    try {
        calc.call_json("divide", "[1, 0]");
        ADD_FAILURE() << "divide by zero did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("DIV_ZERO"));
        EXPECT_EQ(error.plugin_details(), std::optional<std::string>("{\"dividend\":1}"));
    }
    // A Python exception is a plugin error.
    EXPECT_FIDIUS_ERROR(calc.call_json("boom", "[]"), fidius::Status::PluginError, "RuntimeError");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1,"), fidius::Status::InvalidJson, "not valid JSON");

    // The plugin's own error code, and a traceback as details.
    fidius::Plugin raising = fidius::Builder().build().load_path(path_of("python/raising"), options);
    try {
        raising.call_json("divide", "[1, 2]");
        ADD_FAILURE() << "PyRaising.divide did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("QUOTA"));
        ASSERT_TRUE(error.plugin_details().has_value());
        EXPECT_NE(error.plugin_details()->find("Traceback"), std::string::npos);
    }
    EXPECT_FIDIUS_ERROR(raising.call_json("multiply", "[1, 2]"), fidius::Status::NotImplemented, "multiply");

    // Signed Python packages.
    fidius::Host signed_host =
        fidius::Builder().set_require_signature(true).add_trusted_key_file(path_of("keys/trusted.public")).build();
    EXPECT_EQ(signed_host.load_path(path_of("python-signed/calc"), options).call_json("greet", "[\"signed\"]"),
              "\"Hello, signed!\"");
    EXPECT_FIDIUS_ERROR(signed_host.load_path(path_of("python/calc"), options), fidius::Status::SignatureRequired,
                        "");
}

// A Calculator whose add never returns and whose greet sleeps for an hour;
// multiply answers.
constexpr const char *kHostileCalculator = R"(import time
__interface_hash__ = 0x0271E9B7D21D10F1
def add(a, b):
    while True:
        pass
def greet(name):
    time.sleep(3600)
def divide(a, b):
    return a // b
def describe(flag, ratio, tags, note):
    return ''
def boom():
    return ''
def reverse(data):
    return data[::-1]
def ping():
    return None
def multiply(a, b):
    return a * b
)";

// Writes the Python package `pkg` with `source` as plugin.py into `dir` and
// returns its path.
std::string write_python_package(const TempDir &dir, const std::string &source) {
    const std::filesystem::path package = dir.path() / "pkg";
    std::filesystem::create_directory(package);
    std::ofstream(package / "package.toml") << "[package]\nname = \"Hostile\"\nversion = \"1\"\n"
                                               "interface = \"Calculator\"\ninterface_version = 2\n"
                                               "runtime = \"python\"\n\n[python]\nentry_module = \"plugin\"\n\n"
                                               "[metadata]\n";
    std::ofstream(package / "plugin.py") << source;
    return package.string();
}

// Expects add (an endless loop) and greet (an hour's sleep) of the hostile
// calculator to be stopped at a 300 ms deadline, well before the default
// 10 s, and the plugin to answer afterwards; then a package whose import
// never ends to fail to load the same way.
void expect_python_timeouts(const fidius::Host &host, const fidius::LoadOptions &options) {
    TempDir dir;
    fidius::Plugin hostile = host.load_path(write_python_package(dir, kHostileCalculator), options);
    const char *const calls[][2] = {{"add", "[1, 2]"}, {"greet", "[\"x\"]"}};
    for (const auto &call : calls) {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_FIDIUS_ERROR(hostile.call_json(call[0], call[1]), fidius::Status::Timeout, "deadline");
        const auto elapsed = std::chrono::steady_clock::now() - start;
        EXPECT_GE(elapsed, 300ms) << call[0];
        EXPECT_LT(elapsed, 8s) << call[0];
    }
    EXPECT_EQ(hostile.call_json("multiply", "[6, 7]"), "42");  // still usable

    TempDir endless;
    const std::string package = write_python_package(endless, "while True:\n    pass\n");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FIDIUS_ERROR(host.load_path(package, options), fidius::Status::Timeout, "deadline");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
}

TEST_F(FidiusTest, PythonDeadlineOnTheHost) {
    expect_python_timeouts(fidius::Builder().set_python_deadline(300ms).build(), options_for("calculator.toml"));
}

TEST_F(FidiusTest, PythonDeadlinePerLoad) {
    fidius::LoadOptions options = options_for("calculator.toml");
    options.set_python_deadline(300ms);
    expect_python_timeouts(fidius::Builder().build(), options);
}

TEST_F(FidiusTest, CallDeadlineBoundsPython) {
    expect_python_timeouts(fidius::Builder().set_call_deadline(300ms).build(), options_for("calculator.toml"));
}

// ---- isolated plugins ----------------------------------------------------------

// Methods of the Faulty interface, by declaration index.
constexpr std::uint32_t kFaultyPing = 0;   // ping(n: u64) -> u64
constexpr std::uint32_t kFaultyFault = 2;  // fault(how: String) -> Result<String, PluginError>

struct FaultyPlugin {
    const char *name;  // for the test names
    const char *path;  // under $FIDIUS_TEST_FIXTURES
    fidius::Runtime runtime;
};

std::ostream &operator<<(std::ostream &out, const FaultyPlugin &plugin) { return out << plugin.name; }

// Isolated plugins, the worker named explicitly: the one `make lib` built.
class IsolatedTest : public FidiusTest {
protected:
    std::string worker_path() const { return path_of("../release/fidius-host-worker"); }

    // A host whose plugins run isolated, with a restart policy of
    // `max_restarts` a minute.
    fidius::Host isolated_host(std::uint32_t max_restarts) const {
        return fidius::Builder()
            .set_isolation(fidius::Isolation::Isolated)
            .set_worker_path(worker_path())
            .set_restart_policy(max_restarts, std::chrono::minutes(1))
            .build();
    }

    // The Faulty plugin at `relative`, loaded with its interface.
    fidius::Plugin load_faulty(const fidius::Host &host, const std::string &relative = "faulty/libfaulty_plugin.so",
                               fidius::LoadOptions options = fidius::LoadOptions()) const {
        options.set_interface(interface_file("faulty.toml"));
        return host.load_path(path_of(relative), options);
    }
};

// Every test runs on the native and the Python Faulty plugin.
class IsolatedRuntimesTest : public IsolatedTest, public ::testing::WithParamInterface<FaultyPlugin> {
protected:
    void SetUp() override {
        IsolatedTest::SetUp();
        if (GetParam().runtime == fidius::Runtime::Python && !fidius::has_feature(fidius::Feature::Python))
            GTEST_SKIP() << "built without Python";
    }
};

INSTANTIATE_TEST_SUITE_P(Runtimes, IsolatedRuntimesTest,
                         ::testing::Values(FaultyPlugin{"Native", "faulty/libfaulty_plugin.so", fidius::Runtime::Cdylib},
                                           FaultyPlugin{"Python", "isolated/py-faulty", fidius::Runtime::Python}),
                         [](const ::testing::TestParamInfo<FaultyPlugin> &info) { return std::string(info.param.name); });

TEST_P(IsolatedRuntimesTest, ACrashLosesTheWorkerNotTheHost) {
    fidius::Host host = isolated_host(5);
    fidius::Plugin plugin = load_faulty(host, GetParam().path);
    fidius::Plugin bystander = load_faulty(host, GetParam().path);
    EXPECT_EQ(plugin.info().runtime, GetParam().runtime);
    EXPECT_EQ(plugin.method_count(), 4u);

    // It answers as an in-process plugin does: JSON, raw, plugin errors.
    EXPECT_EQ(plugin.call_json("ping", "[41]"), "42");
    EXPECT_EQ(plugin.call_json("calls", "[]"), "1");
    std::vector<std::uint8_t> ping_41(8, 0);
    ping_41[0] = 41;
    const fidius::Bytes pong = plugin.call(kFaultyPing, ping_41);
    ASSERT_EQ(pong.size(), 8u);
    EXPECT_EQ(read_u64(pong.data()), 42u);
    try {
        plugin.call_json("fault", "[\"error\"]");
        ADD_FAILURE() << "fault(\"error\") did not throw";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("ASKED"));
        EXPECT_EQ(error.plugin_message(), std::optional<std::string>("failing as asked"));
    }
    const fidius::WorkerUsage before = plugin.worker_usage();
    EXPECT_GT(before.pid, 0);
    EXPECT_EQ(before.calls, 4u);
    EXPECT_EQ(before.errors, 1u);
    EXPECT_EQ(before.timeouts, 0u);
    EXPECT_EQ(before.restarts, 0u);
    EXPECT_NE(bystander.worker_usage().pid, before.pid);  // a worker per handle

    // A segfault: the call throws WorkerLost, naming the signal; no worker runs.
    const fidius::Error lost = error_of([&] { plugin.call_json("fault", "[\"segfault\"]"); });
    EXPECT_EQ(lost.status(), fidius::Status::WorkerLost) << lost.what();
    EXPECT_NE(lost.message().find("SIGSEGV"), std::string::npos) << lost.what();
    EXPECT_FALSE(lost.plugin_code().has_value());
    fidius::WorkerUsage after = plugin.worker_usage();
    EXPECT_EQ(after.pid, 0);
    EXPECT_EQ(after.errors, 2u);

    // The next call restarts the worker: a new instance, the state is lost.
    EXPECT_EQ(plugin.call_json("calls", "[]"), "0");
    after = plugin.worker_usage();
    EXPECT_GT(after.pid, 0);
    EXPECT_NE(after.pid, before.pid);
    EXPECT_EQ(after.restarts, 1u);
    // The other handle never noticed.
    EXPECT_EQ(bystander.call_json("ping", "[1]"), "2");
    EXPECT_EQ(bystander.worker_usage().restarts, 0u);

    // Killed from outside between calls: the next call finds it gone, the one after restarts it.
    ASSERT_EQ(kill(static_cast<pid_t>(after.pid), SIGKILL), 0);
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[1]"), fidius::Status::WorkerLost, "SIGKILL");
    EXPECT_EQ(plugin.call_json("ping", "[2]"), "3");
    EXPECT_EQ(plugin.worker_usage().restarts, 2u);
}

// A call past the deadline kills the worker (Timeout); isolation and a
// restart policy of none set by the load options keep the plugin lost.
TEST_F(IsolatedTest, DeadlineKillsTheWorkerAndNoRestartKeepsItLost) {
    fidius::Host host = fidius::Builder().set_worker_path(worker_path()).set_call_deadline(300ms).build();
    fidius::LoadOptions options;
    options.set_isolation(fidius::Isolation::Isolated).set_restart_policy(0, 0ms);
    fidius::Plugin plugin = load_faulty(host, "faulty/libfaulty_plugin.so", std::move(options));
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    EXPECT_GT(plugin.worker_usage().peak_memory_bytes, 0u);  // the running worker's, so far

    const auto start = std::chrono::steady_clock::now();
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"spin\"]"), fidius::Status::Timeout, "killed");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 8s);
    fidius::WorkerUsage usage = plugin.worker_usage();
    EXPECT_EQ(usage.timeouts, 1u);
    EXPECT_EQ(usage.pid, 0);
    EXPECT_GE(usage.cpu_time, 50ms);  // it spun until it was killed
    EXPECT_FIDIUS_ERROR(plugin.memory_high_water(), fidius::Status::Unsupported, "not a WASM plugin");

    // Restart policy 0: every call is WorkerLost and says why.
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[1]"), fidius::Status::WorkerLost, "restart policy");
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[1]"), fidius::Status::WorkerLost, "restart policy");
    usage = plugin.worker_usage();
    EXPECT_EQ(usage.restarts, 0u);
    EXPECT_EQ(usage.pid, 0);
}

// Restarts within the policy's window, then none: each loss names how the
// worker ended.
TEST_F(IsolatedTest, RestartPolicyLimitsRestarts) {
    fidius::Plugin plugin = load_faulty(isolated_host(2));
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"abort\"]"), fidius::Status::WorkerLost, "SIGABRT");
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"exit\"]"), fidius::Status::WorkerLost, "exited with code 3");
    EXPECT_EQ(plugin.call_json("ping", "[2]"), "3");
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"segfault\"]"), fidius::Status::WorkerLost, "SIGSEGV");
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[3]"), fidius::Status::WorkerLost, "allows no restart");
    EXPECT_EQ(plugin.worker_usage().restarts, 2u);
}

// A plugin that leaks past the worker's memory cap loses its worker only.
TEST_F(IsolatedTest, WorkerMemoryLimit) {
    fidius::Host host = fidius::Builder()
                            .set_isolation(fidius::Isolation::Isolated)
                            .set_worker_path(worker_path())
                            .set_worker_memory_limit(768u << 20)
                            .set_worker_cpu_limit(std::chrono::minutes(1))
                            .build();
    fidius::Plugin plugin = load_faulty(host);
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"leak\"]"), fidius::Status::WorkerLost,
                        "memory cap 805306368 bytes");
    EXPECT_EQ(plugin.call_json("ping", "[0]"), "1");
}

// A hardened worker opens no network socket, reads no file outside the
// plugin's own and gains no privileges, and its plugin still answers; the
// same probe opens a socket in a worker without hardening.
TEST_F(IsolatedTest, WorkerHardening) {
    // The Faulty plugin's probe `probe`, refused by the system.
    const auto expect_denied = [](const fidius::Plugin &plugin, const std::string &probe) {
        SCOPED_TRACE(probe);
        const fidius::Error error = error_of([&] { plugin.call_json("fault", "[\"" + probe + "\"]"); });
        EXPECT_EQ(error.status(), fidius::Status::PluginError) << error.what();
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("OS_ERROR")) << error.what();
        EXPECT_NE(error.plugin_message().value_or("").find("Permission denied"), std::string::npos) << error.what();
    };

    fidius::Plugin plain = load_faulty(isolated_host(5));
    EXPECT_EQ(plain.call_json("fault", R"(["socket"])"), R"("a network socket was opened")");

    constexpr fidius::WorkerHardening all = fidius::WorkerHardening::NoNewPrivileges |
                                            fidius::WorkerHardening::DenyNetwork |
                                            fidius::WorkerHardening::ConfineFilesystem;
    static_assert(static_cast<std::uint32_t>(all) == 7);
    static_assert(fidius::has_flag(all, fidius::WorkerHardening::DenyNetwork));
    static_assert(!fidius::has_flag(fidius::WorkerHardening::None, fidius::WorkerHardening::DenyNetwork));
    fidius::Host host = fidius::Builder()
                            .set_isolation(fidius::Isolation::Isolated)
                            .set_worker_path(worker_path())
                            .set_worker_hardening(all)
                            .build();
    fidius::Plugin plugin = load_faulty(host);
    expect_denied(plugin, "socket");
    expect_denied(plugin, "read:" + std::filesystem::absolute(path_of("keys/trusted.public")).string());
    EXPECT_EQ(plugin.call_json("fault", R"(["privileges"])"), R"("no_new_privs=1")");
    EXPECT_EQ(plugin.call_json("ping", "[41]"), "42");

    // Unknown bits are refused; the builder stays usable.
    fidius::Builder builder;
    EXPECT_FIDIUS_ERROR(builder.set_worker_hardening(static_cast<fidius::WorkerHardening>(8)),
                        fidius::Status::InvalidArgument, "unknown bits");
    builder.set_worker_hardening(fidius::WorkerHardening::None).build();
}

// Discovery in a worker: libraries whose initialisers crash or hang are
// skipped entries, the others are listed, and a load by name finds its
// library through the worker, then loads the plugin in-process (the host's
// isolation). The probe folder must never be scanned in-process.
TEST_F(IsolatedTest, DiscoveryInAWorkerSkipsLibrariesThatCrashOrHang) {
    fidius::Builder builder;
    EXPECT_FIDIUS_ERROR(builder.set_discovery_isolation(static_cast<fidius::Isolation>(9)),
                        fidius::Status::InvalidArgument, "isolation 9");
    fidius::Host host = builder.set_discovery_isolation(fidius::Isolation::Isolated)
                            .set_worker_path(worker_path())
                            .set_call_deadline(1500ms)
                            .add_search_path(path_of("probe"))
                            .add_search_path(path_of("faulty"))
                            .build();
    const fidius::Discovery found = host.discover();
    int crashed = 0, hung = 0;
    for (const fidius::SkippedEntry &entry : found.skipped) {
        if (entry.path.find("libinit_crash.so") != std::string::npos) {
            crashed++;
            EXPECT_EQ(entry.status, fidius::Status::WorkerLost) << entry.message;
            EXPECT_NE(entry.message.find("SIGSEGV"), std::string::npos) << entry.message;
            EXPECT_NE(entry.message.find("libinit_crash.so"), std::string::npos) << entry.message;
        } else if (entry.path.find("libinit_hang.so") != std::string::npos) {
            hung++;
            EXPECT_EQ(entry.status, fidius::Status::Timeout) << entry.message;
        } else {
            ADD_FAILURE() << "unexpected skipped entry " << entry.path << ": " << entry.message;
        }
    }
    EXPECT_EQ(crashed, 1);
    EXPECT_EQ(hung, 1);
    int faulty = 0;
    for (const fidius::PluginInfo &info : found.plugins) {
        if (info.name != "FaultyNative") continue;
        faulty++;
        EXPECT_EQ(info.runtime, fidius::Runtime::Cdylib);
        EXPECT_NE(info.path.find("libfaulty_plugin.so"), std::string::npos) << info.path;
    }
    EXPECT_EQ(faulty, 1);

    // By name: found through the worker, loaded in-process.
    fidius::Plugin plugin = host.load("FaultyNative", options_for("faulty.toml"));
    EXPECT_FIDIUS_ERROR(plugin.worker_usage(), fidius::Status::Unsupported, "in-process");
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    EXPECT_FIDIUS_ERROR(host.load("Nobody"), fidius::Status::PluginNotFound, "");
}

TEST_F(IsolatedTest, SettingsAndTheirErrors) {
    fidius::Builder builder;
    EXPECT_FIDIUS_ERROR(builder.set_isolation(static_cast<fidius::Isolation>(7)), fidius::Status::InvalidArgument,
                        "isolation 7");
    EXPECT_FIDIUS_ERROR(builder.set_restart_policy(3, 0ms), fidius::Status::InvalidArgument, "window");
    EXPECT_FIDIUS_ERROR(builder.set_restart_policy(3, -1ms), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(builder.set_worker_cpu_limit(-1s), fidius::Status::InvalidArgument, "negative");
    EXPECT_FIDIUS_ERROR(builder.set_worker_path(""), fidius::Status::InvalidArgument, "");
    EXPECT_FIDIUS_ERROR(builder.set_worker_path("bad\xff"), fidius::Status::InvalidUtf8, "");
    fidius::LoadOptions options;
    EXPECT_FIDIUS_ERROR(options.set_isolation(static_cast<fidius::Isolation>(2)), fidius::Status::InvalidArgument,
                        "isolation 2");
    EXPECT_FIDIUS_ERROR(options.set_restart_policy(1, 0ms), fidius::Status::InvalidArgument, "window");
    EXPECT_FIDIUS_ERROR(options.set_restart_policy(0, -1ms), fidius::Status::InvalidArgument, "negative");

    // Failed setters leave the builder usable; zero caps are no caps.
    builder.set_worker_path(path_of("no-such-worker"))
        .set_worker_memory_limit(0)
        .set_worker_cpu_limit(0s)
        .set_restart_policy(0, 0ms)
        .set_isolation(fidius::Isolation::InProcess);
    fidius::Host host = builder.build();

    // In-process (the host's choice): no worker is needed, and there are no figures.
    fidius::Plugin in_process = load_faulty(host);
    EXPECT_EQ(in_process.call_json("ping", "[1]"), "2");
    EXPECT_FIDIUS_ERROR(in_process.worker_usage(), fidius::Status::Unsupported, "in-process");

    // Isolated by the load options: the missing worker is named.
    options.set_isolation(fidius::Isolation::Isolated);
    EXPECT_FIDIUS_ERROR(load_faulty(host, "faulty/libfaulty_plugin.so", std::move(options)),
                        fidius::Status::WorkerUnavailable, "no-such-worker");
}

// ---- cancellation ---------------------------------------------------------------

// Cancels `token` from a thread of its own after `delay`; joins the thread
// when destroyed, so the token (declared before it) outlives every cancel.
class CancelLater {
public:
    CancelLater(const fidius::CancelToken &token, std::chrono::milliseconds delay)
        : thread_([&token, delay] {
              std::this_thread::sleep_for(delay);
              token.cancel();
          }) {}
    CancelLater(const CancelLater &) = delete;
    CancelLater &operator=(const CancelLater &) = delete;
    ~CancelLater() { thread_.join(); }

private:
    std::thread thread_;
};

// Runs `body`, which a CancelLater stops after 300 ms, and expects it to
// throw Status::Cancelled, saying so, after 300 ms and well before the
// default 10 s call deadline (Timeout) would have stopped it: threads are
// slow under valgrind.
template <typename Body>
void expect_cancelled_in_time(Body &&body, std::chrono::steady_clock::time_point start) {
    const fidius::Error error = error_of(std::forward<Body>(body));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(error.status(), fidius::Status::Cancelled) << error.what();
    EXPECT_NE(error.message().find("cancel"), std::string::npos) << error.what();
    EXPECT_FALSE(error.plugin_code().has_value());
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 8s);
}

TEST_F(FidiusTest, CancelTokenLifecycleAndMoves) {
    static_assert(!std::is_copy_constructible_v<fidius::CancelToken>);
    static_assert(!std::is_copy_assignable_v<fidius::CancelToken>);
    static_assert(std::is_nothrow_move_constructible_v<fidius::CancelToken>);
    static_assert(std::is_nothrow_move_assignable_v<fidius::CancelToken>);

    fidius::CancelToken token;
    EXPECT_TRUE(token);
    EXPECT_NE(token.get(), nullptr);
    EXPECT_FALSE(token.cancelled());
    token.cancel();
    EXPECT_TRUE(token.cancelled());
    token.cancel();  // again: nothing more, still cancelled
    EXPECT_TRUE(token.cancelled());

    // Moving leaves an empty token: cancel() does nothing, cancelled() is false.
    fidius::CancelToken moved(std::move(token));
    EXPECT_FALSE(token);
    EXPECT_EQ(token.get(), nullptr);
    EXPECT_FALSE(token.cancelled());
    token.cancel();
    EXPECT_TRUE(moved.cancelled());

    // Assigning over a live token frees it and takes the other.
    fidius::CancelToken fresh;
    EXPECT_FALSE(fresh.cancelled());
    fresh = std::move(moved);
    EXPECT_FALSE(moved);
    EXPECT_TRUE(fresh.cancelled());
    token = fidius::CancelToken();  // a new one into the moved-from object
    EXPECT_TRUE(token);
    EXPECT_FALSE(token.cancelled());

    // An empty token cannot be given to a call; an empty plugin cannot be called.
    fidius::Plugin calc = host_for("plugins").load("BasicCalculator", options_for("calculator.toml"));
    EXPECT_FIDIUS_ERROR(calc.call(kAdd, encode_pair(1, 2), moved), fidius::Status::NullArgument, "CancelToken");
    EXPECT_FIDIUS_ERROR(calc.call_json("add", "[1, 2]", moved), fidius::Status::NullArgument, "CancelToken");
    EXPECT_FIDIUS_ERROR(calc.call_with_context(kAdd, encode_pair(1, 2), nullptr, moved),
                        fidius::Status::NullArgument, "CancelToken");
    EXPECT_FIDIUS_ERROR(calc.call_json_with_context("add", "[1, 2]", nullptr, moved), fidius::Status::NullArgument,
                        "CancelToken");
    const fidius::Plugin empty;
    EXPECT_FIDIUS_ERROR(empty.call_json("add", "[1, 2]", token), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(empty.call(kAdd, encode_pair(1, 2), token), fidius::Status::NullArgument, "");
    EXPECT_FALSE(token.cancelled());

    // release() hands over the C token; a CancelToken can take it back.
    fidius_host_cancel_token_t *raw = fresh.release();
    EXPECT_FALSE(fresh);
    EXPECT_TRUE(fidius_host_cancel_token_is_cancelled(raw));
    fidius::CancelToken adopted(raw);
    EXPECT_TRUE(adopted.cancelled());
    EXPECT_FALSE(fidius::CancelToken(nullptr));

    // Many threads may cancel one token at once, and watch it.
    fidius::CancelToken shared;
    std::atomic<int> seen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&shared, &seen] {
            shared.cancel();
            if (shared.cancelled()) seen++;
        });
    }
    for (std::thread &thread : threads) thread.join();
    EXPECT_EQ(seen.load(), 4);
    EXPECT_TRUE(shared.cancelled());
    // Every moved-from token above is destroyed at the end of this scope.
}

// A running isolated call is stopped by killing its worker; the next call
// starts a new worker even with a restart policy of none (the host stopped
// the worker, not the plugin). A token left alone changes nothing.
TEST_P(IsolatedRuntimesTest, CancelKillsTheWorkerOfARunningCall) {
    fidius::Plugin plugin = load_faulty(isolated_host(0), GetParam().path);
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    const std::int32_t first_pid = plugin.worker_usage().pid;
    EXPECT_GT(first_pid, 0);

    // Not cancelled: cancellable calls answer as the others do, raw and JSON.
    const fidius::CancelToken idle;
    std::vector<std::uint8_t> ping_41(8, 0);
    ping_41[0] = 41;
    const fidius::Bytes pong = plugin.call(kFaultyPing, ping_41, idle);
    ASSERT_EQ(pong.size(), 8u);
    EXPECT_EQ(read_u64(pong.data()), 42u);
    EXPECT_EQ(plugin.call_json("ping", "[5]", idle), "6");
    EXPECT_EQ(plugin.call_json_with_context("ping", "[6]", nullptr, idle), "7");
    EXPECT_EQ(plugin.worker_usage().pid, first_pid);

    {
        const fidius::CancelToken token;
        const auto start = std::chrono::steady_clock::now();
        const CancelLater canceller(token, 300ms);
        expect_cancelled_in_time([&] { plugin.call_json("fault", "[\"spin\"]", token); }, start);
        EXPECT_TRUE(token.cancelled());
    }
    EXPECT_EQ(plugin.worker_usage().pid, 0);  // killed, not restarted yet

    // The next call restarts the worker: a fresh instance, the calls count from 0.
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    EXPECT_EQ(plugin.call_json("calls", "[]"), "1");
    const fidius::WorkerUsage usage = plugin.worker_usage();
    EXPECT_GT(usage.pid, 0);
    EXPECT_NE(usage.pid, first_pid);
    EXPECT_FALSE(idle.cancelled());

    // The raw call is stopped the same way.
    {
        const fidius::CancelToken token;
        std::vector<std::uint8_t> spin;
        const std::string how = "spin";
        put_i64(spin, static_cast<std::int64_t>(how.size()));
        spin.insert(spin.end(), how.begin(), how.end());
        const auto start = std::chrono::steady_clock::now();
        const CancelLater canceller(token, 300ms);
        expect_cancelled_in_time([&] { plugin.call(kFaultyFault, spin, token); }, start);
    }
    EXPECT_EQ(plugin.call_json("ping", "[2]"), "3");
}

// A token cancelled before the call: Cancelled, and nothing reaches the
// plugin (its call counter says so) nor kills its worker.
TEST_P(IsolatedRuntimesTest, PreCancelledTokenCallsNothing) {
    fidius::Plugin plugin = load_faulty(isolated_host(5), GetParam().path);
    EXPECT_EQ(plugin.call_json("calls", "[]"), "0");
    const std::int32_t pid = plugin.worker_usage().pid;

    const fidius::CancelToken token;
    token.cancel();
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[1]", token), fidius::Status::Cancelled, "cancel");
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"segfault\"]", token), fidius::Status::Cancelled, "cancel");
    EXPECT_FIDIUS_ERROR(plugin.call(kFaultyPing, std::vector<std::uint8_t>(8, 0), token), fidius::Status::Cancelled,
                        "cancel");
    EXPECT_FIDIUS_ERROR(plugin.call_json_with_context("ping", "[1]", nullptr, token), fidius::Status::Cancelled,
                        "cancel");

    EXPECT_EQ(plugin.call_json("calls", "[]"), "1");  // only the first call reached it
    EXPECT_EQ(plugin.worker_usage().pid, pid);
    EXPECT_EQ(plugin.worker_usage().restarts, 0u);
}

// In-process native code cannot be stopped: a call given a token, cancelled
// or not, throws Unsupported and never reaches the plugin (spin would never
// return). The library's call counter is per process: compare with before.
TEST_F(FidiusTest, InProcessNativeCallsWithATokenAreUnsupported) {
    fidius::Plugin plugin =
        fidius::Builder().build().load_path(path_of("faulty/libfaulty_plugin.so"), options_for("faulty.toml"));
    const std::uint64_t before = std::stoull(plugin.call_json("calls", "[]"));

    const fidius::CancelToken token;
    EXPECT_FIDIUS_ERROR(plugin.call_json("fault", "[\"spin\"]", token), fidius::Status::Unsupported, "isolated");
    EXPECT_FIDIUS_ERROR(plugin.call(kFaultyPing, std::vector<std::uint8_t>(8, 0), token), fidius::Status::Unsupported,
                        "in-process");
    EXPECT_FIDIUS_ERROR(plugin.call_json_with_context("ping", "[1]", nullptr, token), fidius::Status::Unsupported,
                        "");
    token.cancel();
    EXPECT_FIDIUS_ERROR(plugin.call_json("ping", "[1]", token), fidius::Status::Unsupported, "");

    EXPECT_EQ(plugin.call_json("calls", "[]"), std::to_string(before + 1));
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");  // without a token it runs
}

// A WASM guest is interrupted in a host wait (a sleep) and in its own code
// (an endless loop); its instance is discarded. A cancelled token refuses
// calls before they run.
TEST_F(FidiusTest, CancelInterruptsAWasmGuest) {
    fidius::Plugin hostile = host_for("wasm").load("HostileGuest", options_for("hostile.toml"));
    EXPECT_EQ(hostile.call_json("counter", "[]"), "1");
    for (const char *const method : {"nap", "spin"}) {
        SCOPED_TRACE(method);
        EXPECT_EQ(hostile.call_json("counter", "[]"), "2");
        const fidius::CancelToken token;
        const auto start = std::chrono::steady_clock::now();
        {
            const CancelLater canceller(token, 300ms);
            expect_cancelled_in_time(
                [&] { hostile.call_json(method, std::string(method) == "nap" ? "[3600000]" : "[]", token); }, start);
        }
        EXPECT_EQ(hostile.call_json("counter", "[]"), "1");  // a fresh instance
    }

    // Already cancelled: refused, the instance untouched.
    const fidius::CancelToken cancelled;
    cancelled.cancel();
    EXPECT_FIDIUS_ERROR(hostile.call_json("counter", "[]", cancelled), fidius::Status::Cancelled, "cancel");
    EXPECT_FIDIUS_ERROR(hostile.call_json("nap", "[3600000]", cancelled), fidius::Status::Cancelled, "cancel");
    EXPECT_EQ(hostile.call_json("counter", "[]"), "2");  // the refused calls never ran

    // One token shared by calls on two threads stops them both.
    fidius::Plugin other = host_for("wasm").load("HostileGuest", options_for("hostile.toml"));
    const fidius::CancelToken shared;
    std::vector<std::optional<fidius::Error>> errors(2);
    const auto start = std::chrono::steady_clock::now();
    {
        const CancelLater canceller(shared, 300ms);
        std::vector<std::thread> threads;
        const fidius::Plugin *plugins[] = {&hostile, &other};
        for (std::size_t t = 0; t < 2; t++) {
            threads.emplace_back([&errors, &shared, plugin = plugins[t], t] {
                try {
                    plugin->call_json("nap", "[3600000]", shared);
                } catch (const fidius::Error &error) {
                    errors[t] = error;
                }
            });
        }
        for (std::thread &thread : threads) thread.join();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
    for (const std::optional<fidius::Error> &error : errors) {
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(error->status(), fidius::Status::Cancelled) << error->what();
    }
    EXPECT_EQ(hostile.call_json("counter", "[]"), "1");
    EXPECT_EQ(other.call_json("counter", "[]"), "1");
}

// In-process Python gets an exception raised in the thread running it.
TEST_F(FidiusTest, CancelStopsAnInProcessPythonCall) {
    if (!fidius::has_feature(fidius::Feature::Python)) GTEST_SKIP() << "built without Python";
    fidius::Plugin plugin =
        fidius::Builder().build().load_path(path_of("isolated/py-faulty"), options_for("faulty.toml"));
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");
    {
        const fidius::CancelToken token;
        const auto start = std::chrono::steady_clock::now();
        const CancelLater canceller(token, 300ms);
        expect_cancelled_in_time([&] { plugin.call_json("fault", "[\"spin\"]", token); }, start);
    }
    EXPECT_EQ(plugin.call_json("ping", "[1]"), "2");  // still usable
}

// ---- egress policies -----------------------------------------------------------

TEST_F(FidiusTest, EgressCallbackSeesAllowedRequestsAndDeniesOthers) {
    HttpServer server;
    struct Seen {
        std::mutex lock;
        int calls = 0;
        std::string last;
        std::optional<std::string> fixture_header;
    };
    auto seen = std::make_shared<Seen>();
    const std::weak_ptr<Seen> watch = seen;

    fidius::EgressPolicy policy = fidius::EgressPolicy::callback([seen](const fidius::HttpRequest &request) {
        std::lock_guard<std::mutex> guard(seen->lock);
        seen->calls++;
        seen->last = std::string(request.plugin) + " " + std::string(request.method) + " " +
                     std::string(request.scheme) + " " + std::string(request.authority) + " " +
                     std::string(request.host) + ":" + std::to_string(request.port) + " " +
                     std::string(request.path_with_query);
        if (auto value = request.header("x-fidius-fixture")) seen->fixture_header = std::string(*value);
        return request.method == "GET";
    });
    fidius::Host host = fidius::Builder().set_egress_policy(policy).build();
    fidius::Plugin fetcher = load_fetcher(host);
    policy = fidius::EgressPolicy();  // the builder, host and plugin keep their own reference

    EXPECT_EQ(fetcher.call_json("fetch", server.fetch_args("GET", "/a?b=c")), "\"200 hello from /a?b=c\"");
    EXPECT_EQ(server.requests(), 1);
    const std::string port = std::to_string(server.port());
    {
        std::lock_guard<std::mutex> guard(seen->lock);
        EXPECT_EQ(seen->last, "FetchGuest GET http 127.0.0.1:" + port + " 127.0.0.1:" + port + " /a?b=c");
        EXPECT_EQ(seen->fixture_header, std::optional<std::string>("fetch"));
    }
    EXPECT_TRUE(fetcher.denied_requests().empty());

    // Denied: the guest reports an HTTP error; nothing reaches the server.
    try {
        fetcher.call_json("fetch", server.fetch_args("POST", "/upload"));
        ADD_FAILURE() << "the POST was not denied";
    } catch (const fidius::PluginError &error) {
        EXPECT_EQ(error.plugin_code(), std::optional<std::string>("HTTP"));
        ASSERT_TRUE(error.plugin_message().has_value());
        EXPECT_NE(error.plugin_message()->find("HttpRequestDenied"), std::string::npos);
    }
    EXPECT_EQ(server.requests(), 1);
    const std::vector<fidius::DeniedRequest> denied = fetcher.denied_requests();
    ASSERT_EQ(denied.size(), 1u);
    EXPECT_EQ(denied[0].method, "POST");
    EXPECT_EQ(denied[0].url, "http://127.0.0.1:" + port + "/upload");
    EXPECT_EQ(seen->calls, 2);

    // The callback (and what it captured) is released with its last user.
    seen.reset();
    host = fidius::Host();
    EXPECT_FALSE(watch.expired());
    fetcher = fidius::Plugin();
    EXPECT_TRUE(watch.expired());
}

TEST_F(FidiusTest, EgressCallbackThatThrowsDenies) {
    HttpServer server;
    std::atomic<int> calls{0};
    const fidius::EgressPolicy throwing = fidius::EgressPolicy::callback([&calls](const fidius::HttpRequest &) -> bool {
        calls++;
        throw std::runtime_error("the policy store is down");
    });
    fidius::Plugin fetcher = load_fetcher(fidius::Builder().build(), &throwing);
    EXPECT_FIDIUS_ERROR(fetcher.call_json("fetch", server.fetch_args("GET", "/x")), fidius::Status::PluginError,
                        "HttpRequestDenied");
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(server.requests(), 0);
    EXPECT_EQ(fetcher.denied_requests().size(), 1u);
    EXPECT_FIDIUS_ERROR(fidius::EgressPolicy::callback(nullptr), fidius::Status::NullArgument, "empty");
}

TEST_F(FidiusTest, EgressAllowList) {
    HttpServer server;
    const std::string exact = "127.0.0.1:" + std::to_string(server.port());
    const std::string other = "127.0.0.1:" + std::to_string(server.port() == 65535 ? 1 : server.port() + 1);
    const fidius::EgressPolicy allowed = fidius::EgressPolicy::allow_list({"*.example.com", exact});
    const fidius::EgressPolicy elsewhere = fidius::EgressPolicy::allow_list({other});
    const fidius::EgressPolicy nothing = fidius::EgressPolicy::allow_list({});

    // The host denies everything; a load's own policy overrides it.
    fidius::Host host = fidius::Builder().set_egress_policy(nothing).build();
    fidius::Plugin denied_by_host = load_fetcher(host);
    EXPECT_FIDIUS_ERROR(denied_by_host.call_json("fetch", server.fetch_args("GET", "/x")),
                        fidius::Status::PluginError, "HttpRequestDenied");
    EXPECT_EQ(load_fetcher(host, &allowed).call_json("fetch", server.fetch_args("GET", "/ok")),
              "\"200 hello from /ok\"");
    EXPECT_FIDIUS_ERROR(load_fetcher(host, &elsewhere).call_json("fetch", server.fetch_args("GET", "/x")),
                        fidius::Status::PluginError, "HttpRequestDenied");
    EXPECT_EQ(server.requests(), 1);

    EXPECT_FIDIUS_ERROR(fidius::EgressPolicy::allow_list({"*"}), fidius::Status::InvalidArgument, "\"*\"");
    EXPECT_FIDIUS_ERROR(fidius::EgressPolicy::allow_list({std::string("a.com\0b.com", 11)}),
                        fidius::Status::InvalidArgument, "NUL");
}

// What a response rule saw: the status, whether a retry was available and
// the credential the request was sent with.
struct Observation {
    int status = 0;
    bool retry_available = false;
    std::string authorization;

    bool operator==(const Observation &other) const {
        return status == other.status && retry_available == other.retry_available &&
               authorization == other.authorization;
    }
};

std::ostream &operator<<(std::ostream &out, const Observation &o) {
    return out << "(" << o.status << ", " << std::boolalpha << o.retry_available << ", \"" << o.authorization << "\")";
}

TEST_F(FidiusTest, EgressRulesSetHeadersAndRetryOnceWithAFreshCredential) {
    HttpServer server;
    // Filled by the rules, on the calling thread and the library's I/O
    // threads; looked at here once the call is over.
    struct Seen {
        std::mutex lock;
        int issued = 0;
        std::vector<Observation> observed;
        bool fixture_header_sent = false;
        std::optional<fidius::Error> host_error, nul_name_error, nul_value_error, response_edit_error;
        std::optional<fidius::HttpRequest> kept;  // a view kept past its rule: only its edits are used
    };
    auto seen = std::make_shared<Seen>();
    auto error_from = [](auto &&body) -> std::optional<fidius::Error> {
        try {
            body();
        } catch (const fidius::Error &error) {
            return error;
        }
        return std::nullopt;
    };

    fidius::EgressRules rules;
    // Sends every request with "Bearer stale" the first time and "Bearer
    // fresh" after, without the guest's x-fidius-fixture header.
    rules.http = [seen, error_from](const fidius::HttpRequest &request) {
        std::lock_guard<std::mutex> guard(seen->lock);
        request.set_header("Authorization", seen->issued++ == 0 ? "Bearer stale" : "Bearer fresh");
        request.remove_header("x-fidius-fixture");
        // What would change the request decided on is refused; the edits stay.
        seen->host_error = error_from([&] { request.set_header("Host", "elsewhere.example"); });
        seen->nul_name_error = error_from([&] { request.set_header(std::string_view("x-a\0b", 5), "v"); });
        seen->nul_value_error = error_from([&] { request.set_header("x-trace", std::string_view("a\0b", 3)); });
        seen->kept = request;
        return true;
    };
    // Records each response and retries once on 401.
    rules.response = [seen, error_from](const fidius::HttpRequest &request, const fidius::HttpResponse &response) {
        std::lock_guard<std::mutex> guard(seen->lock);
        seen->observed.push_back(Observation{response.status, response.retry_available,
                                             std::string(request.header("authorization").value_or("(none)"))});
        if (request.header("x-fidius-fixture")) seen->fixture_header_sent = true;
        seen->response_edit_error = error_from([&] { request.set_header("x-late", "1"); });
        return response.status == 401 ? fidius::ResponseDirective::RetryOnce : fidius::ResponseDirective::Forward;
    };
    const fidius::EgressPolicy policy = fidius::EgressPolicy::rules(std::move(rules));
    fidius::Plugin fetcher = load_fetcher(fidius::Builder().set_egress_policy(policy).build());

    // The stale credential gets a 401 the guest never sees: the request goes
    // to the HTTP rule again and is sent with the fresh one.
    const std::string result = fetcher.call_json("fetch", server.fetch_args("GET", "/private/report"));
    EXPECT_EQ(result.rfind("\"200", 0), 0u) << result;
    EXPECT_EQ(result, "\"200 hello from /private/report\"");
    const std::vector<HttpServer::Headers> received = server.requests_for("/private/report");
    ASSERT_EQ(received.size(), 2u);
    EXPECT_EQ(HttpServer::header(received[0], "authorization"), std::optional<std::string>("Bearer stale"));
    EXPECT_EQ(HttpServer::header(received[1], "authorization"), std::optional<std::string>("Bearer fresh"));
    for (const HttpServer::Headers &headers : received) {
        EXPECT_EQ(HttpServer::header(headers, "x-fidius-fixture"), std::nullopt);
        EXPECT_EQ(HttpServer::header(headers, "host"), "127.0.0.1:" + std::to_string(server.port()));
    }
    EXPECT_TRUE(fetcher.denied_requests().empty());

    std::lock_guard<std::mutex> guard(seen->lock);
    EXPECT_EQ(seen->issued, 2);
    EXPECT_EQ(seen->observed,
              (std::vector<Observation>{{401, true, "Bearer stale"}, {200, false, "Bearer fresh"}}));
    EXPECT_FALSE(seen->fixture_header_sent);
    ASSERT_TRUE(seen->host_error.has_value());
    EXPECT_EQ(seen->host_error->status(), fidius::Status::InvalidArgument);
    EXPECT_NE(seen->host_error->message().find("host"), std::string::npos) << seen->host_error->what();
    ASSERT_TRUE(seen->nul_name_error.has_value());
    EXPECT_EQ(seen->nul_name_error->status(), fidius::Status::InvalidArgument);
    EXPECT_NE(seen->nul_name_error->message().find("NUL"), std::string::npos) << seen->nul_name_error->what();
    ASSERT_TRUE(seen->nul_value_error.has_value());
    EXPECT_EQ(seen->nul_value_error->status(), fidius::Status::InvalidArgument);
    EXPECT_NE(seen->nul_value_error->message().find("NUL"), std::string::npos) << seen->nul_value_error->what();
    // A response rule's request is the request as sent: it cannot be edited.
    ASSERT_TRUE(seen->response_edit_error.has_value());
    EXPECT_EQ(seen->response_edit_error->status(), fidius::Status::Misuse);
    // Nor can a request view kept past its rule, nor one made by from_c.
    ASSERT_TRUE(seen->kept.has_value());
    EXPECT_FIDIUS_ERROR(seen->kept->set_header("x-late", "1"), fidius::Status::Misuse, "rule");
    EXPECT_FIDIUS_ERROR(seen->kept->remove_header("authorization"), fidius::Status::Misuse, "rule");
    EXPECT_FIDIUS_ERROR(fidius::HttpRequest().set_header("x-late", "1"), fidius::Status::Misuse, "rule");
}

TEST_F(FidiusTest, ResponseRulesThatThrowForwardAndRetriesHappenOnce) {
    HttpServer server;
    std::atomic<int> decided{0};
    std::atomic<int> observed{0};
    auto stale = [&decided](const fidius::HttpRequest &request) {
        decided++;
        request.set_header("authorization", "Bearer stale");
        return true;
    };

    // A response rule that throws forwards the response: the guest sees the 401.
    fidius::EgressRules throwing;
    throwing.http = stale;
    throwing.response = [&observed](const fidius::HttpRequest &,
                                    const fidius::HttpResponse &) -> fidius::ResponseDirective {
        observed++;
        throw std::runtime_error("the token service is down");
    };
    const fidius::EgressPolicy throwing_policy = fidius::EgressPolicy::rules(std::move(throwing));
    EXPECT_EQ(load_fetcher(fidius::Builder().build(), &throwing_policy)
                  .call_json("fetch", server.fetch_args("GET", "/private/a")),
              "\"401 who are you?\"");
    EXPECT_EQ(server.requests_for("/private/a").size(), 1u);
    EXPECT_EQ(decided.exchange(0), 1);
    EXPECT_EQ(observed.exchange(0), 1);

    // A rule that always answers RetryOnce: the request is sent twice, and
    // the second response (no retry available) reaches the guest.
    fidius::EgressRules insisting;
    insisting.http = stale;
    insisting.response = [&observed](const fidius::HttpRequest &, const fidius::HttpResponse &response) {
        observed++;
        EXPECT_EQ(response.status, 401);
        EXPECT_EQ(response.header("content-length"), std::optional<std::string_view>("12"));
        return fidius::ResponseDirective::RetryOnce;
    };
    const fidius::EgressPolicy insisting_policy = fidius::EgressPolicy::rules(std::move(insisting));
    EXPECT_EQ(load_fetcher(fidius::Builder().build(), &insisting_policy)
                  .call_json("fetch", server.fetch_args("GET", "/private/b")),
              "\"401 who are you?\"");
    EXPECT_EQ(server.requests_for("/private/b").size(), 2u);
    EXPECT_EQ(decided.load(), 2);
    EXPECT_EQ(observed.load(), 2);

    // A single callback (EgressPolicy::callback) may set headers too.
    const fidius::EgressPolicy fresh = fidius::EgressPolicy::callback([](const fidius::HttpRequest &request) {
        request.set_header("Authorization", "Bearer fresh");
        return true;
    });
    EXPECT_EQ(load_fetcher(fidius::Builder().build(), &fresh)
                  .call_json("fetch", server.fetch_args("GET", "/private/c")),
              "\"200 hello from /private/c\"");
}

TEST_F(FidiusTest, NoEgressPolicyAndDeniedCapability) {
    // The guest imports wasi:http: without a policy it is not loaded.
    EXPECT_FIDIUS_ERROR(load_fetcher(fidius::Builder().build()), fidius::Status::NoEgressPolicy, "");
    // Clearing a policy brings that back.
    const fidius::EgressPolicy everything_denied = fidius::EgressPolicy::allow_list({});
    fidius::Builder cleared;
    cleared.set_egress_policy(everything_denied).clear_egress_policy();
    EXPECT_FIDIUS_ERROR(load_fetcher(cleared.build()), fidius::Status::NoEgressPolicy, "");
    fidius::LoadOptions options = options_for("fetcher.toml");
    options.set_egress_policy(everything_denied).clear_egress_policy();
    EXPECT_FIDIUS_ERROR(fidius::Builder().build().load_path(path_of("wasm/fetch"), options),
                        fidius::Status::NoEgressPolicy, "");
    // A host that denies the capability.
    fidius::Host strict = fidius::Builder().add_denied_capability("http").set_egress_policy(everything_denied).build();
    EXPECT_FIDIUS_ERROR(load_fetcher(strict), fidius::Status::CapabilityDenied, "");
}

// ---- socket egress (tcp, udp) -----------------------------------------------------

// The dialer plugin is a WASM package: without WASM there is nothing to test.
#define SKIP_WITHOUT_WASM()                                                              \
    do {                                                                                 \
        if (!fidius::has_feature(fidius::Feature::Wasm)) GTEST_SKIP() << "built without WASM"; \
    } while (0)

// The plugin error of a call that fails, or nothing when it does not.
template <typename Body>
std::optional<fidius::PluginError> plugin_error_of(Body &&body) {
    try {
        body();
    } catch (const fidius::PluginError &error) {
        return error;
    }
    ADD_FAILURE() << "expected a fidius::PluginError, but nothing was thrown";
    return std::nullopt;
}

TEST_F(FidiusTest, SocketAllowList) {
    SKIP_WITHOUT_WASM();
    EchoServer server;
    const std::string exact = "127.0.0.1:" + std::to_string(server.port());
    const std::string other = "127.0.0.1:" + std::to_string(server.port() == 65535 ? 1 : server.port() + 1);
    const fidius::EgressPolicy allowed = fidius::EgressPolicy::allow_list({exact});
    const fidius::EgressPolicy elsewhere = fidius::EgressPolicy::allow_list({other});

    fidius::Plugin dialer = load_dialer(&allowed);
    EXPECT_EQ(dialer.call_json("tcp_exchange", EchoServer::args("127.0.0.1", server.port(), "hello")),
              "\"echo: hello\"");
    EXPECT_TRUE(dialer.denied_requests().empty());
    EXPECT_EQ(server.connections(), 1);

    // A special address the list does not name is not reached.
    fidius::Plugin denied = load_dialer(&elsewhere);
    const auto error = plugin_error_of(
        [&] { denied.call_json("tcp_exchange", EchoServer::args("127.0.0.1", server.port(), "hello")); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->plugin_code(), std::optional<std::string>("SOCKET"));
    EXPECT_EQ(server.connections(), 1);
    const std::vector<fidius::DeniedRequest> log = denied.denied_requests();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].method, "TCP");
    EXPECT_EQ(log[0].url, "tcp://" + exact);
    EXPECT_FALSE(log[0].reason.empty());
}

TEST_F(FidiusTest, SocketRuleSeesTargetsAndDenials) {
    SKIP_WITHOUT_WASM();
    EchoServer server;
    struct Seen {
        std::mutex lock;
        int calls = 0;
        std::optional<fidius::SocketProtocol> protocol;
        std::string address;
        int port = -1;
        bool special = false;
        bool had_host = true;
        std::atomic<int> allow_port{0};
    };
    auto seen = std::make_shared<Seen>();
    const std::weak_ptr<Seen> watch = seen;
    seen->allow_port = server.port();

    fidius::EgressRules rules;
    rules.socket = [seen](const fidius::SocketTarget &target) {
        std::lock_guard<std::mutex> guard(seen->lock);
        seen->calls++;
        seen->protocol = target.protocol;
        seen->address = std::string(target.address);
        seen->port = target.port;
        seen->special = target.special;
        seen->had_host = target.host.has_value();
        return target.plugin == "SocketGuest" && target.port == seen->allow_port.load();
    };
    fidius::EgressPolicy policy = fidius::EgressPolicy::rules(std::move(rules));
    fidius::Plugin dialer = load_dialer(&policy);
    policy = fidius::EgressPolicy();  // the plugin keeps its own reference
    const std::string args = EchoServer::args("127.0.0.1", server.port(), "hello");

    EXPECT_EQ(dialer.call_json("tcp_exchange", args), "\"echo: hello\"");
    {
        std::lock_guard<std::mutex> guard(seen->lock);
        EXPECT_EQ(seen->calls, 1);
        EXPECT_EQ(seen->protocol, std::optional<fidius::SocketProtocol>(fidius::SocketProtocol::Tcp));
        EXPECT_EQ(seen->address, "127.0.0.1");
        EXPECT_EQ(seen->port, server.port());
        EXPECT_TRUE(seen->special);
        EXPECT_FALSE(seen->had_host);
    }
    EXPECT_TRUE(dialer.denied_requests().empty());

    // Denied: the guest's connect fails; nothing reaches the server.
    seen->allow_port = 0;
    const auto error = plugin_error_of([&] { dialer.call_json("tcp_exchange", args); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->plugin_code(), std::optional<std::string>("SOCKET"));
    EXPECT_EQ(server.connections(), 1);
    const std::vector<fidius::DeniedRequest> denied = dialer.denied_requests();
    ASSERT_EQ(denied.size(), 1u);
    EXPECT_EQ(denied[0].method, "TCP");
    EXPECT_EQ(denied[0].url, "tcp://127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(denied[0].reason, "denied by the egress policy");

    // The rules (and what they captured) are released with their last user.
    seen.reset();
    EXPECT_FALSE(watch.expired());
    dialer = fidius::Plugin();
    EXPECT_TRUE(watch.expired());
}

TEST_F(FidiusTest, SocketRulesThatThrowOrAreEmptyDeny) {
    SKIP_WITHOUT_WASM();
    EchoServer server;
    const std::string args = EchoServer::args("127.0.0.1", server.port(), "hello");
    std::atomic<int> calls{0};
    fidius::EgressRules throwing;
    throwing.socket = [&calls](const fidius::SocketTarget &) -> bool {
        calls++;
        throw std::runtime_error("the policy store is down");
    };
    const fidius::EgressPolicy throws = fidius::EgressPolicy::rules(std::move(throwing));
    fidius::Plugin dialer = load_dialer(&throws);
    EXPECT_FIDIUS_ERROR(dialer.call_json("tcp_exchange", args), fidius::Status::PluginError, "");
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(dialer.denied_requests().size(), 1u);

    // No rule at all: every socket is denied (but the plugin loads).
    const fidius::EgressPolicy none = fidius::EgressPolicy::rules({});
    fidius::Plugin closed = load_dialer(&none);
    EXPECT_FIDIUS_ERROR(closed.call_json("tcp_exchange", args), fidius::Status::PluginError, "");
    EXPECT_EQ(server.connections(), 0);
    ASSERT_EQ(closed.denied_requests().size(), 1u);
    EXPECT_EQ(closed.denied_requests()[0].method, "TCP");
}

TEST_F(FidiusTest, SocketByNameThroughTheDnsRule) {
    SKIP_WITHOUT_WASM();
    EchoServer server;
    struct Seen {
        std::mutex lock;
        std::vector<std::string> lookups;
        std::vector<std::string> hosts;  // the names the socket rule saw
    };
    auto seen = std::make_shared<Seen>();
    fidius::EgressRules rules;
    rules.dns = [seen](std::string_view plugin, std::string_view name) {
        std::lock_guard<std::mutex> guard(seen->lock);
        seen->lookups.emplace_back(name);
        return plugin == "SocketGuest" && name == "localhost";
    };
    // localhost by name, and 127.0.0.1 itself (asked with no host name).
    rules.socket = [seen](const fidius::SocketTarget &target) {
        std::lock_guard<std::mutex> guard(seen->lock);
        if (target.host) {
            seen->hosts.emplace_back(*target.host);
            return *target.host == "localhost";
        }
        return target.address == "127.0.0.1";
    };
    const fidius::EgressPolicy policy = fidius::EgressPolicy::rules(std::move(rules));
    fidius::Plugin dialer = load_dialer(&policy);

    EXPECT_EQ(dialer.call_json("tcp_exchange", EchoServer::args("localhost", server.port(), "by name")),
              "\"echo: by name\"");
    {
        std::lock_guard<std::mutex> guard(seen->lock);
        EXPECT_EQ(seen->lookups, std::vector<std::string>{"localhost"});
        ASSERT_FALSE(seen->hosts.empty());
        for (const std::string &host : seen->hosts) EXPECT_EQ(host, "localhost");
    }

    // Another name is not looked up: the refused lookup is logged.
    const auto error = plugin_error_of(
        [&] { dialer.call_json("tcp_exchange", EchoServer::args("ip6-localhost", server.port(), "x")); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->plugin_code(), std::optional<std::string>("SOCKET"));
    const std::vector<fidius::DeniedRequest> denied = dialer.denied_requests();
    ASSERT_FALSE(denied.empty());
    EXPECT_EQ(denied.back().method, "DNS");
    EXPECT_EQ(denied.back().url, "dns://ip6-localhost");
    EXPECT_FALSE(denied.back().reason.empty());
    EXPECT_EQ(server.connections(), 1);
}

TEST_F(FidiusTest, UdpDatagramsReachAllowedAddressesOnly) {
    SKIP_WITHOUT_WASM();
    UdpReceiver receiver;
    UdpReceiver elsewhere;
    const fidius::EgressPolicy policy =
        fidius::EgressPolicy::allow_list({"127.0.0.1:" + std::to_string(receiver.port())});
    fidius::Plugin dialer = load_dialer(&policy);

    EXPECT_EQ(dialer.call_json("udp_send", EchoServer::args("127.0.0.1", receiver.port(), "ping")), "null");
    EXPECT_EQ(receiver.receive(), std::optional<std::string>("ping"));
    EXPECT_TRUE(dialer.denied_requests().empty());

    const auto error =
        plugin_error_of([&] { dialer.call_json("udp_send", EchoServer::args("127.0.0.1", elsewhere.port(), "ping")); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->plugin_code(), std::optional<std::string>("SOCKET"));
    const std::vector<fidius::DeniedRequest> denied = dialer.denied_requests();
    ASSERT_EQ(denied.size(), 1u);
    EXPECT_EQ(denied[0].method, "UDP");
    EXPECT_EQ(denied[0].url, "udp://127.0.0.1:" + std::to_string(elsewhere.port()));
    EXPECT_FALSE(denied[0].reason.empty());
}

TEST_F(FidiusTest, SocketGuestNeedsAnEgressPolicy) {
    SKIP_WITHOUT_WASM();
    EXPECT_FIDIUS_ERROR(load_dialer(nullptr), fidius::Status::NoEgressPolicy, "\"tcp\" or \"udp\"");
}

// ---- streams ---------------------------------------------------------------------

// The Streamer fixture (tests/fixtures/*/stream*) in one runtime.
struct StreamPlugin {
    const char *name;  // for the test names
    const char *path;  // under $FIDIUS_TEST_FIXTURES
    fidius::Runtime runtime;
};

std::ostream &operator<<(std::ostream &out, const StreamPlugin &plugin) { return out << plugin.name; }

// Methods of the Streamer interface, by declaration index.
constexpr std::uint32_t kCount = 0;       // count(from: u64, to: u64) -> Stream<u64>
constexpr std::uint32_t kBlobs = 1;       // blobs(count: u32, size: u32) -> Stream<Vec<u8>>
constexpr std::uint32_t kFailAfter = 2;   // fail_after(good: u32) -> Stream<u32>
constexpr std::uint32_t kSum = 4;         // sum(items: Stream<u64>) -> u64
constexpr std::uint32_t kCheckedSum = 5;  // checked_sum(limit: i64, items: Stream<i64>) -> Result<i64, PluginError>

constexpr const char *kForever = "[0, 18446744073709551615]";  // count's arguments for a stream with no end in sight

// bincode of a u64 and a u32: little-endian.
std::vector<std::uint8_t> le_u64(std::uint64_t value) {
    std::vector<std::uint8_t> out;
    for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
    return out;
}

void put_u32(std::vector<std::uint8_t> &out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

std::vector<std::uint8_t> concat(std::vector<std::uint8_t> a, const std::vector<std::uint8_t> &b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A JSON producer's items and what happened to it: how often it was asked
// for an item, and how often the library released it (destroyed the
// producer and everything it captured).
struct Feed {
    std::size_t asked = 0;
    int releases = 0;
    // Called at every ask, before the item is given (may throw).
    std::function<void(std::size_t at)> on_ask;

    // A producer giving `items` (JSON texts) in turn, then the end.
    fidius::JsonItemProducer producer(std::vector<std::string> items) { return make_producer(std::move(items)); }
    // A producer giving `items` (bincode) in turn, then the end.
    fidius::ItemProducer raw_producer(std::vector<std::vector<std::uint8_t>> items) {
        return make_producer(std::move(items));
    }

private:
    // The producer captures a probe whose last copy counts a release when it goes.
    template <typename Item>
    std::function<std::optional<Item>()> make_producer(std::vector<Item> items) {
        std::shared_ptr<void> probe(nullptr, [this](void *) { releases++; });
        return [this, probe, items = std::move(items)]() -> std::optional<Item> {
            const std::size_t at = asked++;
            if (on_ask) on_ask(at);
            if (at >= items.size()) return std::nullopt;
            return items[at];
        };
    }
};

// Every test runs in each runtime of the fixture, with its own host.
class StreamsTest : public FidiusTest, public ::testing::WithParamInterface<StreamPlugin> {
protected:
    void SetUp() override {
        FidiusTest::SetUp();
        if (GetParam().runtime == fidius::Runtime::Wasm && !fidius::has_feature(fidius::Feature::Wasm))
            GTEST_SKIP() << "built without WASM";
        if (GetParam().runtime == fidius::Runtime::Python && !fidius::has_feature(fidius::Feature::Python))
            GTEST_SKIP() << "built without Python";
        plugin_ = fidius::Builder().build().load_path(path_of(GetParam().path), options_for("streamer.toml"));
    }

    bool is_wasm() const { return GetParam().runtime == fidius::Runtime::Wasm; }

    // How many of the plugin's producers are alive (not meaningful in WASM,
    // where each stream runs in an instance of its own).
    std::string live_producers() const { return plugin_.call_json("live_producers", "[]"); }

    fidius::Plugin plugin_;
};

// Expects `count` live producers in the plugin, except in WASM.
#define EXPECT_LIVE_PRODUCERS(count)                                         \
    do {                                                                     \
        if (!is_wasm()) {                                                    \
            EXPECT_EQ(live_producers(), std::to_string(count));              \
        }                                                                    \
    } while (0)

INSTANTIATE_TEST_SUITE_P(Runtimes, StreamsTest,
                         ::testing::Values(StreamPlugin{"Native", "streams/libstream_plugin.so", fidius::Runtime::Cdylib},
                                           StreamPlugin{"Wasm", "wasm/stream", fidius::Runtime::Wasm},
                                           StreamPlugin{"Python", "python/stream", fidius::Runtime::Python}),
                         [](const ::testing::TestParamInfo<StreamPlugin> &info) { return std::string(info.param.name); });

TEST_P(StreamsTest, ServerStreamsRunToTheirEnd) {
    // JSON, pulled one by one: the end is no item, and stays so.
    fidius::Stream numbers = plugin_.call_stream_json("count", "[3, 7]");
    EXPECT_TRUE(numbers);
    for (const char *expected : {"3", "4", "5", "6"}) EXPECT_EQ(numbers.next_json(), std::optional<std::string>(expected));
    EXPECT_EQ(numbers.next_json(), std::nullopt);
    EXPECT_EQ(numbers.next_json(), std::nullopt);
    EXPECT_EQ(numbers.next(), std::nullopt);
    EXPECT_EQ(numbers.items_read(), 0u);  // a server stream reads no input

    // A range-for over the JSON items of a stream object, and of a temporary one.
    std::vector<std::string> seen;
    fidius::Stream again = plugin_.call_stream_json("count", "[3, 7]");
    for (const std::string &item : again.json_items()) seen.push_back(item);
    EXPECT_EQ(seen, (std::vector<std::string>{"3", "4", "5", "6"}));
    EXPECT_EQ(again.next_json(), std::nullopt);
    seen.clear();
    for (std::string item : plugin_.call_stream_json("count", "[0, 2]").json_items()) seen.push_back(item);
    EXPECT_EQ(seen, (std::vector<std::string>{"0", "1"}));

    // The iterators are input iterators: standard algorithms read them.
    fidius::Stream counted = plugin_.call_stream_json("count", "[5, 9]");
    fidius::Stream::JsonItems items = counted.json_items();
    fidius::Stream::json_iterator it = items.begin();
    EXPECT_EQ(*it++, "5");  // the item before the increment, kept
    EXPECT_EQ(*it, "6");
    EXPECT_EQ(it->size(), 1u);
    EXPECT_EQ(std::vector<std::string>(it, items.end()), (std::vector<std::string>{"6", "7", "8"}));

    // Raw: bincode arguments (two u64) and items (a u64 each).
    fidius::Stream raw = plugin_.call_stream(kCount, concat(le_u64(10), le_u64(12)));
    for (std::uint64_t expected : {10u, 11u}) {
        const std::optional<fidius::bytes_view> item = raw.next();
        ASSERT_TRUE(item.has_value());
        ASSERT_EQ(item->size(), 8u);
        EXPECT_EQ(read_u64(item->data()), expected);
    }
    EXPECT_EQ(raw.next(), std::nullopt);
    // Either pull works on either call.
    fidius::Stream mixed = plugin_.call_stream(kCount, concat(le_u64(1), le_u64(2)));
    EXPECT_EQ(mixed.next_json(), std::optional<std::string>("1"));
    mixed = plugin_.call_stream_json("count", "[7, 8]");
    const std::optional<fidius::bytes_view> seven = mixed.next();
    ASSERT_TRUE(seven.has_value());
    EXPECT_TRUE(*seven == fidius::bytes_view(le_u64(7)));

    // Items far larger than the first buffers: a Vec<u8> item is its
    // length (u64) and its bytes; item i is `size` bytes of i % 251.
    std::vector<std::uint8_t> args;
    put_u32(args, 3);
    put_u32(args, 70000);
    std::uint8_t index = 0;
    for (fidius::bytes_view blob : plugin_.call_stream(kBlobs, args)) {
        ASSERT_EQ(blob.size(), 8u + 70000u);
        EXPECT_EQ(read_u64(blob.data()), 70000u);
        EXPECT_TRUE(std::all_of(blob.begin() + 8, blob.end(), [index](std::uint8_t b) { return b == index; }))
            << "blob " << int(index);
        index++;
    }
    EXPECT_EQ(index, 3);
}

TEST_P(StreamsTest, AFailedStreamThrowsItsErrorAgain) {
    const fidius::Status expected = GetParam().runtime == fidius::Runtime::Cdylib ? fidius::Status::PluginPanic
                                    : is_wasm()                                   ? fidius::Status::PluginTrap
                                                                                  : fidius::Status::PluginError;
    fidius::Stream stream = plugin_.call_stream_json("fail_after", "[2]");
    EXPECT_EQ(stream.next_json(), std::optional<std::string>("0"));
    EXPECT_EQ(stream.next_json(), std::optional<std::string>("1"));
    for (int pull = 0; pull < 2; pull++) {  // the error is sticky
        const fidius::Error error = error_of([&] { stream.next_json(); });
        EXPECT_EQ(error.status(), expected) << error.what();
        if (expected == fidius::Status::PluginError) {
            EXPECT_EQ(error.plugin_code(), std::optional<std::string>("TOO_FAR"));
            ASSERT_TRUE(error.plugin_details().has_value());
            EXPECT_NE(error.plugin_details()->find("\"good\""), std::string::npos);
        }
    }
    // A range-for ends with the error thrown from the increment, as fidius::PluginError for a plugin's own.
    std::vector<std::uint32_t> good;
    const fidius::Error error = error_of([&] {
        std::vector<std::uint8_t> args;
        put_u32(args, 2);
        for (fidius::bytes_view item : plugin_.call_stream(kFailAfter, args)) {
            std::uint32_t value = 0;
            std::memcpy(&value, item.data(), sizeof value);
            good.push_back(value);
        }
    });
    EXPECT_EQ(error.status(), expected);
    EXPECT_EQ(good, (std::vector<std::uint32_t>{0, 1}));
    if (expected == fidius::Status::PluginError) {
        EXPECT_TRUE(plugin_error_of([&] {
            for (const std::string &item : plugin_.call_stream_json("fail_after", "[0]").json_items())
                ADD_FAILURE() << "unexpected item " << item;
        }).has_value());
    }
}

TEST_P(StreamsTest, DestroyingAStreamCancelsIt) {
    {
        fidius::Stream stream = plugin_.call_stream_json("count", kForever);
        for (const char *expected : {"0", "1", "2"}) EXPECT_EQ(stream.next_json(), std::optional<std::string>(expected));
        EXPECT_LIVE_PRODUCERS(1);
        // Moving hands the running stream over.
        fidius::Stream moved = std::move(stream);
        EXPECT_FALSE(stream);
        EXPECT_EQ(moved.next_json(), std::optional<std::string>("3"));
    }  // destroyed: the producer is torn down, not drained
    EXPECT_LIVE_PRODUCERS(0);

    // Leaving a range-for over a temporary stream early cancels it.
    int seen = 0;
    for (const std::string &item : plugin_.call_stream_json("count", kForever).json_items()) {
        EXPECT_EQ(item, std::to_string(seen));
        if (++seen == 3) {
            EXPECT_LIVE_PRODUCERS(1);
            break;
        }
    }
    EXPECT_EQ(seen, 3);
    EXPECT_LIVE_PRODUCERS(0);
    seen = 0;
    for (fidius::bytes_view item : plugin_.call_stream(kCount, concat(le_u64(0), le_u64(~0ULL)))) {
        EXPECT_EQ(read_u64(item.data()), static_cast<std::uint64_t>(seen));
        if (++seen == 3) break;
    }
    EXPECT_LIVE_PRODUCERS(0);

    // cancel() and assigning over a stream cancel it too.
    fidius::Stream stream = plugin_.call_stream_json("count", kForever);
    EXPECT_EQ(stream.next_json(), std::optional<std::string>("0"));
    stream.cancel();
    EXPECT_FALSE(stream);
    EXPECT_LIVE_PRODUCERS(0);
    stream = plugin_.call_stream_json("count", kForever);
    EXPECT_EQ(stream.next_json(), std::optional<std::string>("0"));
    stream = fidius::Stream();
    EXPECT_LIVE_PRODUCERS(0);
    // An empty stream: pulling it throws, everything else is fine.
    EXPECT_FIDIUS_ERROR(stream.next(), fidius::Status::NullArgument, "Stream");
    EXPECT_FIDIUS_ERROR(stream.next_json(), fidius::Status::NullArgument, "Stream");
    EXPECT_FIDIUS_ERROR(stream.begin(), fidius::Status::NullArgument, "Stream");
    EXPECT_FIDIUS_ERROR(stream.set_deadline(1s), fidius::Status::NullArgument, "Stream");
    EXPECT_EQ(stream.items_read(), 0u);
    stream.cancel();
}

TEST_P(StreamsTest, StreamDeadline) {
    fidius::Stream stream = plugin_.call_stream_json("count", kForever);
    EXPECT_FIDIUS_ERROR(stream.set_deadline(-1ms), fidius::Status::InvalidArgument, "negative");
    stream.set_deadline(1ms);
    EXPECT_FIDIUS_ERROR(
        while (stream.next()) {}, fidius::Status::Timeout, "");
    EXPECT_FIDIUS_ERROR(stream.next(), fidius::Status::Timeout, "");
    // Zero removes a deadline.
    fidius::Stream unhurried = plugin_.call_stream_json("count", "[0, 3]");
    unhurried.set_deadline(1ms);
    unhurried.set_deadline(0ms);
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(std::distance(unhurried.begin(), unhurried.end()), 3);
}

TEST_P(StreamsTest, ClientStreams) {
    // A producer asked for three items and the end, released once.
    Feed feed;
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", feed.producer({"1", "2", "39"})), "42");
    EXPECT_EQ(feed.asked, 4u);
    EXPECT_EQ(feed.releases, 1);
    // No items.
    Feed empty;
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", empty.producer({})), "0");
    EXPECT_EQ(empty.asked, 1u);
    EXPECT_EQ(empty.releases, 1);
    // Ranges, read in place.
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", {"1", "2", "39"}), "42");
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", {}), "0");
    const std::vector<std::string> numbers{"10", "20", "12"};
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", numbers), "42");
    const std::array<std::string_view, 2> views{"40", "2"};
    EXPECT_EQ(plugin_.call_client_stream_json("sum", "[]", views), "42");

    // The plugin reads through the bad item, no further.
    Feed checked;
    const std::optional<fidius::PluginError> negative = plugin_error_of(
        [&] { plugin_.call_client_stream_json("checked_sum", "[100]", checked.producer({"5", "6", "-1", "7", "8"})); });
    ASSERT_TRUE(negative.has_value());
    EXPECT_EQ(negative->status(), fidius::Status::PluginError);
    EXPECT_EQ(negative->plugin_code(), std::optional<std::string>("NEGATIVE"));
    ASSERT_TRUE(negative->plugin_message().has_value());
    EXPECT_NE(negative->plugin_message()->find("item 2"), std::string::npos);
    EXPECT_EQ(checked.asked, 3u);
    EXPECT_EQ(checked.releases, 1);
    EXPECT_EQ(plugin_.call_client_stream_json("checked_sum", "[100]", {"5", "6", "7"}), "18");

    // Raw: bincode items (u64), the other arguments' bincode tuple, a bincode result.
    EXPECT_EQ(read_u64(plugin_.call_client_stream(kSum, {}, {le_u64(7), le_u64(8)}).data()), 15u);
    std::vector<std::int64_t> pending{30, 12};
    const fidius::Bytes total = plugin_.call_client_stream(kCheckedSum, le_u64(100), [&pending]() {
        std::optional<std::vector<std::uint8_t>> item;
        if (pending.empty()) return item;
        item.emplace();
        put_i64(*item, pending.back());
        pending.pop_back();
        return item;
    });
    // Result<i64, PluginError> travels as its Ok value.
    EXPECT_EQ(decode_i64(total), 42);
    const std::vector<fidius::Bytes> none;
    EXPECT_EQ(read_u64(plugin_.call_client_stream(kSum, {}, none).data()), 0u);
}

TEST_P(StreamsTest, FailingInputs) {
    // A producer that throws: the call throws StreamInputFailed saying
    // what, the producer is released, nothing is read after.
    Feed feed;
    feed.on_ask = [](std::size_t at) {
        if (at == 1) throw std::runtime_error("the disk is on fire");
    };
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("sum", "[]", feed.producer({"1", "2", "3"})),
                        fidius::Status::StreamInputFailed, "the producer threw: the disk is on fire");
    EXPECT_EQ(feed.asked, 2u);
    EXPECT_EQ(feed.releases, 1);
    const fidius::Error error = error_of(
        [&] { plugin_.call_client_stream(kSum, {}, []() -> std::optional<std::vector<std::uint8_t>> { throw 42; }); });
    EXPECT_EQ(error.status(), fidius::Status::StreamInputFailed);
    EXPECT_NE(error.message().find("item 0"), std::string::npos) << error.what();
    EXPECT_NE(error.message().find("INTERNAL_PANIC"), std::string::npos) << error.what();
    EXPECT_NE(error.message().find("not a std::exception"), std::string::npos) << error.what();
    // A fidius::Error names its own status to the library.
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("sum", "[]",
                                                        []() -> std::optional<std::string> {
                                                            throw fidius::Error(fidius::Status::Io, "cannot read");
                                                        }),
                        fidius::Status::StreamInputFailed, "returned IO (the producer threw: IO: cannot read)");

    // Items that are not values of the item type.
    Feed bad;
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("sum", "[]", bad.producer({"1", "\"two\"", "3"})),
                        fidius::Status::StreamInputFailed, "item 1");
    EXPECT_EQ(bad.asked, 2u);
    EXPECT_EQ(bad.releases, 1);
    const std::vector<std::uint8_t> short_item{1, 2, 3};
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream(kSum, {}, {fidius::bytes_view(short_item)}),
                        fidius::Status::StreamInputFailed, "item 0");

    // Other arguments that do not decode: the input is never read, and released.
    Feed unread;
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream(kCheckedSum, fidius::bytes_view(std::string_view("abc")),
                                                   unread.raw_producer({le_u64(1)})),
                        fidius::Status::PluginSerialization, "");
    EXPECT_EQ(unread.asked, 0u);
    EXPECT_EQ(unread.releases, 1);
}

TEST_P(StreamsTest, BidirectionalStreamsReadTheirInputLazily) {
    Feed feed;
    fidius::Stream shouts = plugin_.call_stream_json("shout", R"(["!"])", feed.producer({R"("hey")", R"("you")", R"("there")"}));
    EXPECT_EQ(feed.asked, 0u);
    EXPECT_EQ(shouts.next_json(), std::optional<std::string>(R"("HEY!")"));
    EXPECT_EQ(feed.asked, 1u);  // one in for one out
    EXPECT_EQ(shouts.items_read(), 1u);
    EXPECT_EQ(shouts.next_json(), std::optional<std::string>(R"("YOU!")"));
    EXPECT_EQ(feed.asked, 2u);
    EXPECT_EQ(shouts.items_read(), 2u);
    // A producer calling back into the stream it feeds: Misuse, which it
    // may catch (only an exception that escapes it fails the input).
    std::optional<fidius::Status> reentered;
    feed.on_ask = [&](std::size_t) {
        try {
            shouts.next_json();
        } catch (const fidius::Error &e) {
            reentered = e.status();
        }
    };
    EXPECT_EQ(shouts.next_json(), std::optional<std::string>(R"("THERE!")"));
    EXPECT_EQ(reentered, std::optional<fidius::Status>(fidius::Status::Misuse));
    feed.on_ask = nullptr;
    EXPECT_EQ(feed.releases, 0);
    EXPECT_EQ(shouts.next_json(), std::nullopt);
    EXPECT_EQ(feed.asked, 4u);
    EXPECT_EQ(feed.releases, 1);  // released at the end, before the stream is destroyed
    EXPECT_EQ(shouts.items_read(), 3u);

    // Raw: the suffix's bincode as the arguments, bincode strings in and out.
    const std::vector<std::string> words{"abc", "de"};
    std::size_t next_word = 0;
    std::vector<std::string> out;
    for (fidius::bytes_view item : plugin_.call_stream(6, encode_string("?"), [&]() {
             std::optional<std::vector<std::uint8_t>> item;
             if (next_word < words.size()) item = encode_string(words[next_word++]);
             return item;
         })) {
        ASSERT_GE(item.size(), 8u);
        out.emplace_back(item.begin() + 8, item.end());
    }
    EXPECT_EQ(out, (std::vector<std::string>{"ABC?", "DE?"}));

    // Cancelled with input left: the rest is never read, the input released.
    Feed cancelled;
    {
        fidius::Stream stream = plugin_.call_stream_json("shout", R"(["?"])", cancelled.producer({R"("hey")", R"("you")"}));
        EXPECT_EQ(stream.next_json(), std::optional<std::string>(R"("HEY?")"));
    }
    EXPECT_EQ(cancelled.asked, 1u);
    EXPECT_EQ(cancelled.releases, 1);

    // A producer that throws ends the stream with StreamInputFailed, again at every pull.
    Feed failing;
    failing.on_ask = [](std::size_t at) {
        if (at == 1) throw std::runtime_error("no more words");
    };
    fidius::Stream stream = plugin_.call_stream_json("shout", R"(["!"])", failing.producer({R"("hey")", R"("you")"}));
    EXPECT_EQ(stream.next_json(), std::optional<std::string>(R"("HEY!")"));
    EXPECT_FIDIUS_ERROR(stream.next_json(), fidius::Status::StreamInputFailed, "the producer threw: no more words");
    EXPECT_FIDIUS_ERROR(stream.next(), fidius::Status::StreamInputFailed, "the producer threw: no more words");
    EXPECT_EQ(failing.releases, 1);
}

TEST_P(StreamsTest, CallsThatDoNotMatchHowAMethodStreams) {
    // A unary call of a streaming method, a stream call of a unary one.
    EXPECT_FIDIUS_ERROR(plugin_.call_json("count", "[0, 1]"), fidius::Status::StreamMismatch, "server-streaming");
    EXPECT_FIDIUS_ERROR(plugin_.call(kCount, concat(le_u64(0), le_u64(1))), fidius::Status::StreamMismatch, "");
    EXPECT_FIDIUS_ERROR(plugin_.call_stream_json("live_producers", "[]"), fidius::Status::StreamMismatch,
                        "'live_producers'");
    EXPECT_FIDIUS_ERROR(plugin_.call_stream(3), fidius::Status::StreamMismatch, "");
    // An input for a server stream, none for a bidirectional one, a client
    // stream of a method that returns a stream: the input is released.
    Feed feed;
    EXPECT_FIDIUS_ERROR(plugin_.call_stream_json("count", "[0, 1]", feed.producer({})), fidius::Status::StreamMismatch,
                        "");
    EXPECT_EQ(feed.releases, 1);
    EXPECT_FIDIUS_ERROR(plugin_.call_stream_json("shout", R"(["!"])"), fidius::Status::StreamMismatch, "");
    Feed client;
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("count", "[0, 1]", client.producer({})),
                        fidius::Status::StreamMismatch, "");
    EXPECT_EQ(client.asked, 0u);
    EXPECT_EQ(client.releases, 1);
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("live_producers", "[]", {"1"}), fidius::Status::StreamMismatch,
                        "");
    // Arguments, methods and producers that are wrong.
    EXPECT_FIDIUS_ERROR(plugin_.call_stream_json("count", "[0]"), fidius::Status::ArgumentMismatch, "");
    EXPECT_FIDIUS_ERROR(plugin_.call_stream_json("nope", "[]"), fidius::Status::UnknownMethod, "nope");
    EXPECT_FIDIUS_ERROR(plugin_.call_stream(99), fidius::Status::MethodOutOfRange, "");
    EXPECT_FIDIUS_ERROR(plugin_.call_client_stream_json("sum", "[]", fidius::JsonItemProducer()),
                        fidius::Status::NullArgument, "producer");
    EXPECT_FIDIUS_ERROR(plugin_.call_stream(6, encode_string("!"), fidius::ItemProducer()),
                        fidius::Status::NullArgument, "producer");
    // An empty plugin object: the producer is not handed over, and goes.
    Feed unused;
    const fidius::Plugin empty;
    EXPECT_FIDIUS_ERROR(empty.call_stream_json("count", "[0, 1]"), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(empty.call_client_stream_json("sum", "[]", unused.producer({"1"})),
                        fidius::Status::NullArgument, "Plugin");
    EXPECT_EQ(unused.releases, 1);
}

// A stream needs the interface given at load: it says which methods stream.
TEST_F(FidiusTest, StreamsNeedAnInterface) {
    fidius::Plugin plugin = fidius::Builder().build().load_path(path_of("streams/libstream_plugin.so"));
    EXPECT_FIDIUS_ERROR(plugin.call_stream_json("count", "[0, 1]"), fidius::Status::NoInterface, "");
    EXPECT_FIDIUS_ERROR(plugin.call_stream(kCount, concat(le_u64(0), le_u64(1))), fidius::Status::NoInterface, "");
}

// A stream outlives its plugin and host, and moves between threads.
TEST_F(FidiusTest, StreamsOutliveTheirPluginAndMoveBetweenThreads) {
    fidius::Stream stream;
    {
        fidius::Plugin plugin =
            fidius::Builder().build().load_path(path_of("streams/libstream_plugin.so"), options_for("streamer.toml"));
        stream = plugin.call_stream_json("count", "[0, 4]");
    }
    EXPECT_EQ(stream.next_json(), std::optional<std::string>("0"));
    std::vector<std::string> rest;
    std::thread([&] {
        for (const std::string &item : stream.json_items()) rest.push_back(item);
    }).join();
    EXPECT_EQ(rest, (std::vector<std::string>{"1", "2", "3"}));
}

// ---- move semantics -------------------------------------------------------------

template <typename T>
constexpr bool is_move_only_v = !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T> &&
                                std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>;

static_assert(is_move_only_v<fidius::Builder>);
static_assert(is_move_only_v<fidius::Host>);
static_assert(is_move_only_v<fidius::Plugin>);
static_assert(is_move_only_v<fidius::Interface>);
static_assert(is_move_only_v<fidius::InterfaceBuilder>);
static_assert(is_move_only_v<fidius::LoadOptions>);
static_assert(is_move_only_v<fidius::EgressPolicy>);
static_assert(is_move_only_v<fidius::Bytes>);
static_assert(is_move_only_v<fidius::Stream>);
static_assert(std::is_same_v<std::iterator_traits<fidius::Stream::iterator>::iterator_category, std::input_iterator_tag>);
static_assert(std::is_same_v<std::iterator_traits<fidius::Stream::json_iterator>::value_type, std::string>);

// A call's result is the library's own buffer, held until the Bytes goes:
// moving it moves the buffer, not the bytes.
TEST_F(FidiusTest, BytesOwnTheLibrarysBuffer) {
    fidius::Bytes reversed;
    EXPECT_TRUE(reversed.empty());
    EXPECT_EQ(reversed.data(), nullptr);
    EXPECT_EQ(reversed.begin(), reversed.end());
    {
        fidius::Plugin calc = host_for("plugins").load("BasicCalculator");
        reversed = calc.call(kReverse, fidius::bytes_view(std::string_view("abcdef")));
    }  // the result outlives its plugin and host
    ASSERT_EQ(reversed.size(), 6u);
    EXPECT_EQ(reversed[0], 'f');
    EXPECT_EQ(reversed.to_string(), "fedcba");
    const std::vector<std::uint8_t> expected{'f', 'e', 'd', 'c', 'b', 'a'};
    EXPECT_EQ(reversed.to_vector(), expected);
    EXPECT_TRUE(reversed == expected);
    EXPECT_TRUE(reversed.view() == fidius::bytes_view(expected));
    EXPECT_FALSE(reversed == fidius::bytes_view(std::string_view("fedcb")));

    const std::uint8_t *buffer = reversed.data();
    fidius::Bytes moved(std::move(reversed));
    EXPECT_EQ(moved.data(), buffer);
    EXPECT_TRUE(reversed.empty());
    EXPECT_EQ(reversed.data(), nullptr);

    // A result can be the input of the next call, as it is.
    fidius::Plugin calc = host_for("plugins").load("BasicCalculator");
    EXPECT_EQ(calc.call(kReverse, moved).to_string(), "abcdef");
    // An empty result (ping returns nothing) holds no buffer.
    const fidius::Bytes nothing = calc.call(kPing);
    EXPECT_TRUE(nothing.empty());
    EXPECT_EQ(nothing.data(), nullptr);

    // release() hands the C bytes over; the caller frees them.
    fidius_host_bytes_t raw = moved.release();
    EXPECT_TRUE(moved.empty());
    EXPECT_EQ(raw.data, buffer);
    EXPECT_EQ(raw.len, 6u);
    fidius::Bytes adopted(raw);  // and Bytes can take them back
    EXPECT_EQ(raw.data, nullptr);
    EXPECT_EQ(adopted.data(), buffer);
    adopted = fidius::Bytes();  // assigning over it releases the buffer
    EXPECT_TRUE(adopted.empty());
}

TEST_F(FidiusTest, MovedFromObjectsAreEmptyAndSafe) {
    fidius::Builder builder;
    builder.add_search_path(path_of("plugins"));
    fidius::Builder moved_builder(std::move(builder));
    EXPECT_FALSE(builder);
    EXPECT_EQ(builder.get(), nullptr);
    EXPECT_FIDIUS_ERROR(builder.add_search_path("x"), fidius::Status::NullArgument, "");

    fidius::Host host = moved_builder.build();
    fidius::Host other_host;
    other_host = std::move(host);
    EXPECT_FALSE(host);
    EXPECT_FIDIUS_ERROR(host.load("BasicCalculator"), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(host.discover(), fidius::Status::NullArgument, "");

    fidius::LoadOptions options = options_for("calculator.toml");
    fidius::LoadOptions moved_options(std::move(options));
    EXPECT_FALSE(options);
    EXPECT_FIDIUS_ERROR(options.set_wasm_deadline(1ms), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(other_host.load("BasicCalculator", options), fidius::Status::NullArgument, "LoadOptions");

    fidius::Plugin plugin = other_host.load("BasicCalculator", moved_options);
    fidius::Plugin moved_plugin = std::move(plugin);
    EXPECT_FALSE(plugin);
    EXPECT_FIDIUS_ERROR(plugin.call(kAdd, encode_pair(1, 2)), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(plugin.call_json("add", "[1, 2]"), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(plugin.info(), fidius::Status::NullArgument, "Plugin");
    EXPECT_FIDIUS_ERROR(plugin.method_count(), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(plugin.trait_metadata(), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(plugin.worker_usage(), fidius::Status::NullArgument, "");
    EXPECT_EQ(moved_plugin.call_json("add", "[1, 2]"), "3");
    // Assigning over a live plugin frees it and takes the other.
    fidius::Plugin replaced = other_host.load("PartialCalculator");
    replaced = std::move(moved_plugin);
    EXPECT_EQ(replaced.info().name, "BasicCalculator");

    fidius::Interface iface = interface_file("calculator.toml");
    fidius::Interface moved_iface;
    moved_iface = std::move(iface);
    EXPECT_FALSE(iface);
    EXPECT_FIDIUS_ERROR(iface.hash(), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(iface.to_toml(), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(moved_options.set_interface(iface), fidius::Status::NullArgument, "Interface");
    EXPECT_EQ(moved_iface.hash(), kCalculatorHash);

    fidius::InterfaceBuilder interface_builder("Thing", 1);
    fidius::InterfaceBuilder moved_interface_builder(std::move(interface_builder));
    EXPECT_FALSE(interface_builder);
    EXPECT_FIDIUS_ERROR(interface_builder.add_method("f:->()"), fidius::Status::NullArgument, "");
    EXPECT_FIDIUS_ERROR(interface_builder.build(), fidius::Status::NullArgument, "");
    EXPECT_EQ(moved_interface_builder.add_method("f:->()").build().method_count(), 1u);

    fidius::EgressPolicy policy = fidius::EgressPolicy::allow_list({"example.com"});
    fidius::EgressPolicy moved_policy(std::move(policy));
    EXPECT_FALSE(policy);
    EXPECT_TRUE(moved_policy);
    EXPECT_FIDIUS_ERROR(fidius::Builder().set_egress_policy(policy), fidius::Status::NullArgument, "EgressPolicy");

    // release() hands over the C handle; the wrapper is empty afterwards.
    fidius_host_plugin_t *raw = replaced.release();
    EXPECT_FALSE(replaced);
    fidius::Plugin adopted(raw);
    EXPECT_EQ(adopted.info().name, "BasicCalculator");
    // Every moved-from object above is destroyed at the end of this scope.
}

// ---- host functions ----------------------------------------------------------

// Methods of the Ledger host interface the Bookkeeper fixture calls, and of
// Bookkeeper itself.
constexpr std::uint32_t kLog = 0;
constexpr std::uint32_t kLookup = 1;
constexpr std::uint32_t kRecord = 0;

// bincode of (line: String, times: u32), the arguments of Bookkeeper.record.
std::vector<std::uint8_t> encode_record(const std::string &line, std::uint32_t times) {
    std::vector<std::uint8_t> out = encode_string(line);
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(times >> shift));
    return out;
}

// Runs `body` on a thread of its own and waits for it. A native plugin that
// starts a thread (charge_from_thread) pins its library to the calling
// thread until that thread exits: such calls run here, so that freeing the
// plugin unmaps the library and releases its binding.
template <typename Body>
void on_thread(Body &&body) {
    std::thread thread(std::forward<Body>(body));
    thread.join();
}

// The Bookkeeper fixture (a native library calling its host's Ledger, and
// the same as a WASM component). fidius binds a native library once while
// it is mapped, in the whole process: every test binds its own copy of the
// library file, a separate image.
class HostFunctionsTest : public FidiusTest {
protected:
    // This test's own copy of the native library.
    std::string native_copy() {
        const std::filesystem::path copy = temp_.path() / "libhostcall_plugin.so";
        if (!std::filesystem::exists(copy))
            std::filesystem::copy_file(path_of("hostcall/libhostcall_plugin.so"), copy);
        return copy.string();
    }

    // The native copy, and the WASM component when the library has WASM.
    std::vector<std::string> bookkeepers() {
        std::vector<std::string> paths{native_copy()};
        if (fidius::has_feature(fidius::Feature::Wasm)) paths.push_back(path_of("hostcall-wasm/bookkeeper"));
        return paths;
    }

    fidius::Interface ledger() const { return interface_file("ledger.toml"); }

    fidius::Plugin load_bookkeeper(const std::string &path, const fidius::Binding &binding) const {
        fidius::LoadOptions options = options_for("bookkeeper.toml");
        options.add_binding(binding);
        return fidius::Builder().build().load_path(path, options);
    }

    TempDir temp_;
};

TEST_F(HostFunctionsTest, HostErrorCarriesCodeMessageAndDetails) {
    const fidius::HostError error{"NO_FUNDS", "the account cannot pay", R"({"short":250})"};
    EXPECT_EQ(error.code(), "NO_FUNDS");
    EXPECT_EQ(error.message(), "the account cannot pay");
    EXPECT_EQ(error.details(), std::optional<std::string>(R"({"short":250})"));
    EXPECT_STREQ(error.what(), "NO_FUNDS: the account cannot pay");
    EXPECT_FALSE(fidius::HostError("A", "b").details().has_value());
    EXPECT_EQ(fidius::status_name(fidius::Status::HostAlreadyBound), "HOST_ALREADY_BOUND");
    EXPECT_EQ(fidius::status_name(fidius::Status::HostBindFailed), "HOST_BIND_FAILED");
}

TEST_F(HostFunctionsTest, JsonBindingWithContexts) {
    for (const std::string &path : bookkeepers()) {
        SCOPED_TRACE(path);
        struct Ledger {
            std::mutex lock;
            std::vector<std::string> logged;
            int bad_context = 0;
            int lookups = 0;
            int charges = 0;
            void *expected_context = nullptr;
        };
        auto ledger_state = std::make_shared<Ledger>();
        int request = 0;
        ledger_state->expected_context = &request;
        fidius::Binding binding = fidius::Binding::json(
            ledger(), [ledger_state](const fidius::HostCall &call, std::string_view args) -> std::string {
                Ledger &state = *ledger_state;
                std::lock_guard<std::mutex> guard(state.lock);
                if (!call.args.empty()) state.bad_context++;
                switch (call.method) {
                case kLog:
                    state.logged.emplace_back(args);
                    if (call.context != state.expected_context) state.bad_context++;
                    return "null";
                case kLookup:
                    state.lookups++;
                    return args == R"(["answer"])" ? "41" : "";  // "" is null too
                default:
                    state.charges++;
                    // Charges come from a thread the plugin starts, or from a
                    // call without a context.
                    if (call.context != nullptr) state.bad_context++;
                    if (args == R"(["alice",250])") return "750";
                    throw fidius::HostError{"NO_FUNDS", "the account cannot pay", R"({"short":250})"};
                }
            });
        fidius::Plugin plugin = load_bookkeeper(path, binding);
        binding = fidius::Binding();  // the plugin keeps its own reference
        EXPECT_EQ(ledger_state.use_count(), 2);

        EXPECT_EQ(plugin.call_json_with_context("record", R"(["x", 5])", &request), "5");
        {
            std::lock_guard<std::mutex> guard(ledger_state->lock);
            EXPECT_EQ(ledger_state->logged, (std::vector<std::string>{R"(["x #0"])", R"(["x #1"])", R"(["x #2"])",
                                                                      R"(["x #3"])", R"(["x #4"])"}));
            EXPECT_EQ(ledger_state->bad_context, 0);
        }
        EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["answer"])"), "42");
        EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["missing"])"), "null");

        std::string charged;
        std::optional<fidius::Error> refused;
        on_thread([&] {
            try {
                charged = plugin.call_json("charge_from_thread", R"(["alice", 250])");
                plugin.call_json("charge_from_thread", R"(["bob", 5])");
            } catch (const fidius::Error &error) {
                refused = error;
            }
        });
        EXPECT_EQ(charged, "750");
        ASSERT_TRUE(refused.has_value());
        EXPECT_EQ(refused->status(), fidius::Status::PluginError) << refused->what();
        EXPECT_EQ(refused->plugin_code(), std::optional<std::string>("NO_FUNDS"));
        EXPECT_EQ(refused->plugin_message(), std::optional<std::string>("the account cannot pay"));
        EXPECT_EQ(refused->plugin_details(), std::optional<std::string>(R"({"short":250})"));
        {
            std::lock_guard<std::mutex> guard(ledger_state->lock);
            EXPECT_EQ(ledger_state->lookups, 2);
            EXPECT_EQ(ledger_state->charges, 2);
            EXPECT_EQ(ledger_state->bad_context, 0);
        }

        // The callback (and what it captured) is destroyed with its last user.
        plugin = fidius::Plugin();
        EXPECT_EQ(ledger_state.use_count(), 1);
    }
}

// An isolated native plugin calls its host across the process boundary:
// the callback runs here, with the call's context.
TEST_F(HostFunctionsTest, IsolatedNativePluginCallsItsHost) {
    std::atomic<int> logs{0};
    std::atomic<int> bad_context{0};
    int request = 0;
    const fidius::Binding binding = fidius::Binding::json(
        ledger(), [&logs, &bad_context, &request](const fidius::HostCall &call, std::string_view args) {
            if (call.method == kLog) {
                logs++;
                if (call.context != &request) bad_context++;
                return std::string("null");
            }
            return std::string(args == R"(["answer"])" ? "41" : "null");
        });
    fidius::LoadOptions options = options_for("bookkeeper.toml");
    options.add_binding(binding).set_isolation(fidius::Isolation::Isolated);
    const fidius::Plugin plugin =
        fidius::Builder().set_worker_path(path_of("../release/fidius-host-worker")).build().load_path(native_copy(), options);
    EXPECT_EQ(plugin.call_json_with_context("record", R"(["x", 3])", &request), "3");
    EXPECT_EQ(logs.load(), 3);
    EXPECT_EQ(bad_context.load(), 0);
    EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["answer"])"), "42");
    EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["missing"])"), "null");
    EXPECT_EQ(plugin.worker_usage().restarts, 0u);  // it runs in a worker
}

TEST_F(HostFunctionsTest, RawBindingAndContextsOfConcurrentCalls) {
    for (const std::string &path : bookkeepers()) {
        SCOPED_TRACE(path);
        std::mutex lock;
        std::vector<std::uint8_t> last_log;
        std::atomic<int> logs{0};
        std::atomic<int> bad_context{0};
        // Each call's context is the std::thread::id of the thread making it.
        fidius::Binding binding = fidius::Binding::raw(ledger(), [&](const fidius::HostCall &call) {
            std::vector<std::uint8_t> result;
            if (call.method == kLog) {
                logs++;
                const auto *caller = static_cast<const std::thread::id *>(call.context);
                if (caller == nullptr || *caller != std::this_thread::get_id()) bad_context++;
                std::lock_guard<std::mutex> guard(lock);
                last_log.assign(call.args.begin(), call.args.end());
            } else if (call.method == kLookup) {
                // lookup(key) is Some(100 * the key's length): bincode of
                // Option<u64>, after the key's u64 length.
                if (call.args.size() < 8) throw std::runtime_error("short arguments");
                const std::uint64_t value = 100 * read_u64(call.args.data());
                result.push_back(1);
                for (int shift = 0; shift < 64; shift += 8) result.push_back(static_cast<std::uint8_t>(value >> shift));
            } else {
                throw fidius::HostError("UNEXPECTED", "no charges here");
            }
            return result;
        });
        fidius::Plugin plugin = load_bookkeeper(path, binding);

        EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["abcd"])"), "401");

        std::thread::id self = std::this_thread::get_id();
        const fidius::Bytes recorded = plugin.call_with_context(kRecord, encode_record("t", 3), &self);
        ASSERT_EQ(recorded.size(), 4u);
        EXPECT_EQ(recorded[0], 3);
        EXPECT_EQ(logs.load(), 3);
        {
            std::lock_guard<std::mutex> guard(lock);
            EXPECT_EQ(last_log, encode_string("t #2"));  // the argument tuple (String,)
        }

        // Four threads at once, each with its own context.
        logs = 0;
        std::atomic<int> wrong{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; t++) {
            threads.emplace_back([&] {
                std::thread::id me = std::this_thread::get_id();
                for (int i = 0; i < 5; i++) {
                    try {
                        if (plugin.call_with_context(kRecord, encode_record("c", 10), &me).to_vector() !=
                            std::vector<std::uint8_t>{10, 0, 0, 0})
                            wrong++;
                    } catch (const fidius::Error &) {
                        wrong++;
                    }
                }
            });
        }
        for (std::thread &thread : threads) thread.join();
        EXPECT_EQ(wrong.load(), 0);
        EXPECT_EQ(logs.load(), 4 * 5 * 10);
        EXPECT_EQ(bad_context.load(), 0);
    }
}

TEST_F(HostFunctionsTest, ExceptionsOfHostFunctionsReachThePlugin) {
    for (const std::string &path : bookkeepers()) {
        SCOPED_TRACE(path);
        fidius::Binding binding =
            fidius::Binding::json(ledger(), [](const fidius::HostCall &, std::string_view args) -> std::string {
                if (args == R"(["boom"])") throw std::runtime_error("the ledger database is down");
                if (args == R"(["int"])") throw 42;
                if (args == R"(["bad details"])") throw fidius::HostError("X", "y", "{not json");
                if (args == R"(["wrong type"])") return R"("forty-one")";
                return "41";
            });
        const fidius::Plugin plugin = load_bookkeeper(path, binding);

        // Any exception but HostError is a host failure, which the fixture
        // returns as its own HOST_CALL error naming what happened.
        const fidius::Error thrown = error_of([&] { plugin.call_json("lookup_plus_one", R"(["boom"])"); });
        EXPECT_EQ(thrown.status(), fidius::Status::PluginError) << thrown.what();
        EXPECT_EQ(thrown.plugin_code(), std::optional<std::string>("HOST_CALL"));
        EXPECT_NE(thrown.message().find("the ledger database is down"), std::string::npos) << thrown.what();
        ASSERT_TRUE(thrown.plugin_message().has_value());
        EXPECT_NE(thrown.plugin_message()->find("the ledger database is down"), std::string::npos);

        EXPECT_FIDIUS_ERROR(plugin.call_json("lookup_plus_one", R"(["int"])"), fidius::Status::PluginError,
                            "not a std::exception");
        EXPECT_FIDIUS_ERROR(plugin.call_json("lookup_plus_one", R"(["bad details"])"), fidius::Status::PluginError,
                            "INVALID_JSON");
        EXPECT_FIDIUS_ERROR(plugin.call_json("lookup_plus_one", R"(["wrong type"])"), fidius::Status::PluginError,
                            "Ledger.lookup");
        // The plugin, and the process, go on.
        EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["fine"])"), "42");
    }
}

TEST_F(HostFunctionsTest, NativeLibraryIsBoundOnceWhileMapped) {
    const std::string library = native_copy();
    std::atomic<int> first_calls{0};
    std::atomic<int> second_calls{0};
    const fidius::Binding first = fidius::Binding::json(ledger(), [&](const fidius::HostCall &, std::string_view) {
        first_calls++;
        return std::string("41");
    });
    const fidius::Binding second = fidius::Binding::json(ledger(), [&](const fidius::HostCall &, std::string_view) {
        second_calls++;
        return std::string("1");
    });

    fidius::Plugin plugin = load_bookkeeper(library, first);
    EXPECT_FIDIUS_ERROR(load_bookkeeper(library, second), fidius::Status::HostAlreadyBound, "already bound");
    // The same binding is fine, and serves both handles.
    fidius::Plugin again = load_bookkeeper(library, first);
    EXPECT_EQ(again.call_json("lookup_plus_one", R"(["k"])"), "42");
    EXPECT_EQ(plugin.call_json("lookup_plus_one", R"(["k"])"), "42");
    EXPECT_EQ(first_calls.load(), 2);

    // Once every handle is gone the library is unmapped: another binding takes.
    plugin = fidius::Plugin();
    again = fidius::Plugin();
    fidius::Plugin rebound = load_bookkeeper(library, second);
    EXPECT_EQ(rebound.call_json("lookup_plus_one", R"(["k"])"), "2");
    EXPECT_EQ(second_calls.load(), 1);
    rebound = fidius::Plugin();

    // Another version of Ledger is refused at load, naming both sides.
    const fidius::Interface ledger_v4 = fidius::InterfaceBuilder("Ledger", 4)
                                            .add_method("log:String->")
                                            .add_method("lookup:String->Option<u64>")
                                            .add_method("charge:String,u64->Result<u64,PluginError>")
                                            .build();
    const fidius::Binding v4 =
        fidius::Binding::json(ledger_v4, [](const fidius::HostCall &, std::string_view) { return std::string(); });
    EXPECT_FIDIUS_ERROR(load_bookkeeper(library, v4), fidius::Status::InterfaceVersionMismatch,
                        "plugin was built against v3, host provides v4");
}

TEST_F(HostFunctionsTest, CallbackLivesAsLongAsItsLastUser) {
    auto token = std::make_shared<int>(0);
    auto serve = [token](const fidius::HostCall &, std::string_view) { return std::string("41"); };

    fidius::Binding binding = fidius::Binding::json(ledger(), serve);
    EXPECT_EQ(token.use_count(), 3);  // here, in `serve`, in the binding

    // Moving leaves an empty Binding, which cannot be added.
    fidius::Binding moved = std::move(binding);
    EXPECT_FALSE(binding);
    EXPECT_TRUE(moved);
    fidius::LoadOptions options = options_for("bookkeeper.toml");
    EXPECT_FIDIUS_ERROR(options.add_binding(binding), fidius::Status::NullArgument, "Binding");

    options.add_binding(moved);
    fidius::Plugin plugin = fidius::Builder().build().load_path(native_copy(), options);
    moved = fidius::Binding();
    options = fidius::LoadOptions();
    EXPECT_EQ(token.use_count(), 3);  // the plugin still holds it
    EXPECT_EQ(plugin.call_json_with_context("lookup_plus_one", R"(["k"])", nullptr), "42");
    plugin = fidius::Plugin();
    EXPECT_EQ(token.use_count(), 2);  // destroyed, once

    // A binding that cannot be made releases its callback at once.
    EXPECT_FIDIUS_ERROR(fidius::Binding::json(fidius::Interface(), serve), fidius::Status::NullArgument, "Interface");
    const fidius::Interface optional_method =
        fidius::InterfaceBuilder("Maybe", 1).add_method("maybe:->", fidius::MethodFlags::Optional).build();
    EXPECT_FIDIUS_ERROR(fidius::Binding::json(optional_method, serve), fidius::Status::InvalidInterface, "");
    EXPECT_FIDIUS_ERROR(fidius::Binding::raw(optional_method, [token](const fidius::HostCall &) {
                            return std::vector<std::uint8_t>();
                        }),
                        fidius::Status::InvalidInterface, "");
    EXPECT_EQ(token.use_count(), 2);
    EXPECT_FIDIUS_ERROR(fidius::Binding::json(ledger(), nullptr), fidius::Status::NullArgument, "empty");
    EXPECT_FIDIUS_ERROR(fidius::Binding::raw(ledger(), nullptr), fidius::Status::NullArgument, "empty");
}

// Cancellable calls pass their context to the host functions as the
// others do: the WASM Bookkeeper serves them; the native one, in-process,
// cannot be cancelled (Unsupported, nothing called).
TEST_F(HostFunctionsTest, CancellableCallsWithContexts) {
    for (const std::string &path : bookkeepers()) {
        SCOPED_TRACE(path);
        std::atomic<int> logs{0};
        std::atomic<int> bad_context{0};
        int request = 0;
        fidius::Binding binding = fidius::Binding::json(
            ledger(), [&logs, &bad_context, &request](const fidius::HostCall &call, std::string_view) {
                if (call.method == kLog) {
                    logs++;
                    if (call.context != &request) bad_context++;
                    return std::string("null");
                }
                return std::string("41");
            });
        fidius::Plugin plugin = load_bookkeeper(path, binding);
        const fidius::CancelToken token;
        if (plugin.info().runtime == fidius::Runtime::Cdylib) {
            EXPECT_FIDIUS_ERROR(plugin.call_json_with_context("record", R"(["x", 2])", &request, token),
                                fidius::Status::Unsupported, "in-process");
            EXPECT_FIDIUS_ERROR(plugin.call_with_context(kRecord, encode_record("t", 3), &request, token),
                                fidius::Status::Unsupported, "in-process");
            EXPECT_EQ(logs.load(), 0);
        } else {
            EXPECT_EQ(plugin.call_json_with_context("record", R"(["x", 2])", &request, token), "2");
            const fidius::Bytes recorded = plugin.call_with_context(kRecord, encode_record("t", 3), &request, token);
            ASSERT_EQ(recorded.size(), 4u);
            EXPECT_EQ(recorded[0], 3);
            EXPECT_EQ(logs.load(), 5);
            EXPECT_EQ(bad_context.load(), 0);
            token.cancel();
            EXPECT_FIDIUS_ERROR(plugin.call_json_with_context("record", R"(["x", 2])", &request, token),
                                fidius::Status::Cancelled, "cancel");
            EXPECT_EQ(logs.load(), 5);  // nothing ran
        }
        EXPECT_EQ(plugin.call_json_with_context("record", R"(["y", 1])", &request), "1");
        EXPECT_EQ(bad_context.load(), 0);
    }
}

// ---- threads ------------------------------------------------------------------

TEST_F(FidiusTest, ConcurrentCallsFromThreads) {
    fidius::Plugin calc = host_for("plugins").load("BasicCalculator", options_for("calculator.toml"));
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&calc, &wrong, t] {
            const std::int64_t base = t * 1000000;
            for (std::int64_t i = 0; i < 300; i++) {
                try {
                    if (decode_i64(calc.call(kAdd, encode_pair(base, i))) != base + i) wrong++;
                    const std::string args = "[" + std::to_string(base) + ", " + std::to_string(i) + "]";
                    if (calc.call_json("add", args) != std::to_string(base + i)) wrong++;
                } catch (const fidius::Error &) {
                    wrong++;
                }
            }
        });
    }
    for (std::thread &thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST_F(FidiusTest, ConcurrentEgressCallbacks) {
    HttpServer server;
    std::atomic<int> decisions{0};
    const fidius::EgressPolicy policy = fidius::EgressPolicy::callback([&decisions](const fidius::HttpRequest &r) {
        decisions++;
        return r.method == "GET";
    });
    fidius::Builder builder;
    builder.set_egress_policy(policy).set_wasm_fresh_instance_per_call(true);
    fidius::Plugin fetcher = load_fetcher(builder.build());
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 3; i++) {
                const std::string path = "/t" + std::to_string(t) + "-" + std::to_string(i);
                try {
                    if (fetcher.call_json("fetch", server.fetch_args("GET", path)) !=
                        "\"200 hello from " + path + "\"")
                        wrong++;
                } catch (const fidius::Error &) {
                    wrong++;
                }
            }
        });
    }
    for (std::thread &thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(decisions.load(), 12);
    EXPECT_EQ(server.requests(), 12);
}

}  // namespace
