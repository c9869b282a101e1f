// FunctionRef: a non-owning, non-allocating reference to a callable.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace rill {

template <class Sig>
class FunctionRef;

/// Like std::function_ref (C++26): one pointer to the callable and one to a thunk.
/// The callable must outlive the FunctionRef; it is meant for call arguments.
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): used like a function parameter
      : m_obj(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        m_call([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return m_call(m_obj, std::forward<Args>(args)...); }

 private:
  void* m_obj;
  R (*m_call)(void*, Args...);
};

}  // namespace rill
