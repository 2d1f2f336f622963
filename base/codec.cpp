#include "base/codec.h"

namespace qun::codec {

namespace {
bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }
}  // namespace

Result<msgpack::object_handle> unpack_strict(ByteView bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.bytes_max) {
    return Error(Errc::too_large, std::to_string(bytes.size()) + " bytes, at most " +
                                      std::to_string(limits.bytes_max));
  }
  if (bytes.empty()) return Error(Errc::malformed, "empty input");
  // Maps and ext types never appear in our encodings: limit them to nothing.
  msgpack::unpack_limit limit(limits.array_max, /*map=*/0, limits.str_max, limits.bin_max,
                              /*ext=*/0, limits.depth_max);
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset,
                        limits.reference_input ? reference_all : nullptr, nullptr, limit);
    if (offset != bytes.size()) {
      return Error(Errc::malformed, std::to_string(bytes.size() - offset) + " trailing bytes");
    }
    return handle;
  } catch (const msgpack::depth_size_overflow&) {
    return Error(Errc::malformed, "nested too deeply");
  } catch (const msgpack::size_overflow&) {
    return Error(Errc::too_large, "a field is larger than allowed");
  } catch (const std::bad_alloc&) {
    return Error(Errc::too_large, "allocation refused");
  } catch (const std::exception& e) {
    return Error(Errc::malformed, std::string("not msgpack (") + e.what() + ")");
  }
}

Result<msgpack::object_array> array(const msgpack::object& o, std::size_t size_min,
                                    std::size_t size_max, const char* what) {
  if (o.type != msgpack::type::ARRAY) return Error(Errc::malformed, std::string(what) + ": not an array");
  if (o.via.array.size < size_min || o.via.array.size > size_max) {
    return Error(Errc::malformed, std::string(what) + ": " + std::to_string(o.via.array.size) +
                                      " elements, expected " + std::to_string(size_min) + ".." +
                                      std::to_string(size_max));
  }
  return o.via.array;
}

Result<std::uint64_t> uint(const msgpack::object& o, std::uint64_t max, const char* what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return Error(Errc::malformed, std::string(what) + ": not an unsigned integer");
  }
  if (o.via.u64 > max) return Error(Errc::malformed, std::string(what) + ": out of range");
  return o.via.u64;
}

Result<ByteView> bin(const msgpack::object& o, std::size_t size_min, std::size_t size_max,
                     const char* what) {
  if (o.type != msgpack::type::BIN) return Error(Errc::malformed, std::string(what) + ": not bytes");
  if (o.via.bin.size < size_min || o.via.bin.size > size_max) {
    return Error(Errc::malformed, std::string(what) + ": " + std::to_string(o.via.bin.size) +
                                      " bytes, expected " + std::to_string(size_min) + ".." +
                                      std::to_string(size_max));
  }
  return ByteView(reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr), o.via.bin.size);
}

Result<std::string> str(const msgpack::object& o, std::size_t size_max, const char* what) {
  if (o.type != msgpack::type::STR) return Error(Errc::malformed, std::string(what) + ": not text");
  if (o.via.str.size > size_max) {
    return Error(Errc::too_large, std::string(what) + ": " + std::to_string(o.via.str.size) +
                                      " bytes, at most " + std::to_string(size_max));
  }
  return std::string(o.via.str.ptr, o.via.str.size);
}

bool is_nil(const msgpack::object& o) { return o.type == msgpack::type::NIL; }

}  // namespace qun::codec
