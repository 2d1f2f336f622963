#include "net/control.h"

#include <msgpack.hpp>

#include <cmath>

#include "base/utf8.h"

namespace qun::control {
namespace {

void pack(msgpack::packer<msgpack::sbuffer>& p, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      p.pack_nil();
      break;
    case Json::value_t::boolean:
      v.get<bool>() ? p.pack_true() : p.pack_false();
      break;
    case Json::value_t::number_integer:
      p.pack_int64(v.get<std::int64_t>());
      break;
    case Json::value_t::number_unsigned:
      p.pack_uint64(v.get<std::uint64_t>());
      break;
    case Json::value_t::number_float:
      p.pack_double(v.get<double>());
      break;
    case Json::value_t::string: {
      // Strings go out as valid UTF-8 whatever they hold: the node passes on text from peers
      // (another implementation may send any bytes), and a client that prints or re-encodes it
      // as JSON must never meet invalid UTF-8 (nlohmann's dump throws on it).
      const std::string s = utf8::make_valid(v.get_ref<const std::string&>());
      p.pack_str(static_cast<std::uint32_t>(s.size()));
      p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
      break;
    }
    case Json::value_t::binary: {
      const auto& b = v.get_binary();
      p.pack_bin(static_cast<std::uint32_t>(b.size()));
      p.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
      break;
    }
    case Json::value_t::array:
      p.pack_array(static_cast<std::uint32_t>(v.size()));
      for (const auto& e : v) pack(p, e);
      break;
    case Json::value_t::object:
      p.pack_map(static_cast<std::uint32_t>(v.size()));
      for (const auto& [key, e] : v.items()) {
        const std::string k = utf8::make_valid(key);
        p.pack_str(static_cast<std::uint32_t>(k.size()));
        p.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
        pack(p, e);
      }
      break;
  }
}

Result<Json> convert(const msgpack::object& o, std::size_t depth) {
  if (depth > depth_max) return Error(Errc::too_large, "control message nested too deeply");
  switch (o.type) {
    case msgpack::type::NIL:
      return Json(nullptr);
    case msgpack::type::BOOLEAN:
      return Json(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
      return Json(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER:
      return Json(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      // JSON has no NaN or infinity (nlohmann would print null): refuse them at the door.
      if (!std::isfinite(o.via.f64)) return Error(Errc::malformed, "control message holds a non-finite number");
      return Json(o.via.f64);
    case msgpack::type::STR:
      return Json(std::string(o.via.str.ptr, o.via.str.size));
    case msgpack::type::ARRAY: {
      Json out = Json::array();
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        QUN_TRY(Json e, convert(o.via.array.ptr[i], depth + 1));
        out.push_back(std::move(e));
      }
      return out;
    }
    case msgpack::type::MAP: {
      Json out = Json::object();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR)
          return Error(Errc::malformed, "control message map key is not a string");
        QUN_TRY(Json e, convert(kv.val, depth + 1));
        out[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = std::move(e);
      }
      return out;
    }
    default:
      return Error(Errc::malformed, "control message holds an unsupported msgpack type");
  }
}

}  // namespace

Bytes encode(const Json& value) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> p(buffer);
  pack(p, value);
  const auto* data = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return Bytes(data, data + buffer.size());
}

Result<Json> decode(ByteView bytes) {
  if (bytes.size() > frame_bytes_max) return Error(Errc::too_large, "control message too large");
  if (bytes.empty()) return Error(Errc::malformed, "empty control message");
  msgpack::unpack_limit limit(elements_max, elements_max, frame_bytes_max, frame_bytes_max,
                              /*ext=*/0, depth_max + 1);
  try {
    std::size_t offset = 0;
    msgpack::object_handle h = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()),
                                               bytes.size(), offset, nullptr, nullptr, limit);
    if (offset != bytes.size()) return Error(Errc::malformed, "trailing bytes in control message");
    return convert(h.get(), 0);
  } catch (const msgpack::depth_size_overflow&) {
    return Error(Errc::malformed, "control message nested too deeply");
  } catch (const msgpack::size_overflow&) {
    return Error(Errc::too_large, "a control message field is larger than allowed");
  } catch (const std::bad_alloc&) {
    return Error(Errc::too_large, "control message allocation refused");
  } catch (const std::exception& e) {
    return Error(Errc::malformed, std::string("control message is not msgpack (") + e.what() + ")");
  }
}

Bytes frame(const Json& value) {
  Bytes body = encode(value);
  Bytes out(4);
  const auto n = static_cast<std::uint32_t>(body.size());
  out[0] = static_cast<std::uint8_t>(n >> 24);
  out[1] = static_cast<std::uint8_t>(n >> 16);
  out[2] = static_cast<std::uint8_t>(n >> 8);
  out[3] = static_cast<std::uint8_t>(n);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

void FrameReader::feed(ByteView bytes) {
  if (broken_) return;
  if (offset_ > 0 && offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<Json>> FrameReader::next() {
  if (broken_) return Error(Errc::malformed, "control stream already failed");
  const std::size_t avail = buffer_.size() - offset_;
  if (avail < 4) return std::optional<Json>{};
  const std::uint8_t* p = buffer_.data() + offset_;
  const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                        (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (n > frame_bytes_max) {
    broken_ = true;
    return Error(Errc::too_large, "control frame of " + std::to_string(n) + " bytes");
  }
  if (avail < 4 + n) return std::optional<Json>{};
  auto value = decode(ByteView(p + 4, n));
  offset_ += 4 + n;
  // Compact once the consumed prefix dominates, so a long-lived stream does not grow.
  if (offset_ > 64 * 1024 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(offset_));
    offset_ = 0;
  }
  if (!value.ok()) {
    broken_ = true;
    return value.error();
  }
  return std::optional<Json>(std::move(value).value());
}

}  // namespace qun::control
