"""How a gateway call declared once becomes a method: awaitable on async clients, blocking on sync.

`tasker_client.calls.GatewayCalls` lists every call as a `Unary` or `Streaming` descriptor
around a builder (arguments -> `Call`). A client class inherits it together with one facade
base, which only says how a `Call` runs in its concurrency model.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

from tasker_client.core import Call, StreamCall

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class AsyncFacade(ABC):
    """A client whose calls are awaited (asyncio or Trio)."""

    @abstractmethod
    async def _unary(self, call: Call[R]) -> R:
        """Run one unary call."""

    @abstractmethod
    def _stream(self, call: StreamCall[T]) -> AsyncGenerator[T, None]:
        """Run one streaming call, yielding its items."""


class SyncFacade(ABC):
    """A client whose calls block the calling thread."""

    @abstractmethod
    def _unary(self, call: Call[R]) -> R:
        """Run one unary call."""

    @abstractmethod
    def _stream(self, call: StreamCall[T]) -> Iterator[T]:
        """Run one streaming call, yielding its items."""


def _signature(build: Callable[..., Any]) -> inspect.Signature:
    # What help() and IDEs show: the builder's parameters, without its `Call` return type.
    return inspect.signature(build).replace(return_annotation=inspect.Signature.empty)


def _dress(method: Callable[..., Any], build: Callable[..., Any], sig: inspect.Signature) -> None:
    functools.update_wrapper(method, build)
    del method.__wrapped__  # type: ignore[attr-defined]
    method.__signature__ = sig  # type: ignore[attr-defined]


class Unary(Generic[P, R]):
    """A unary gateway call; the builder validates arguments and makes the request."""

    def __init__(self, build: Callable[P, Call[R]]) -> None:
        self._build = build
        self._sig = _signature(build)
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: AsyncFacade, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __get__(self, obj: SyncFacade, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: AsyncFacade | SyncFacade | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, client = self._build, obj
        method: Callable[..., Any]
        if isinstance(client, AsyncFacade):
            async def method(*args: Any, **kwargs: Any) -> Any:
                return await client._unary(build(*args, **kwargs))
        else:
            def method(*args: Any, **kwargs: Any) -> Any:
                return client._unary(build(*args, **kwargs))
        _dress(method, build, self._sig)
        return method


class Streaming(Generic[P, T]):
    """A server-streaming gateway call: an async iterator on async clients, an iterator on sync."""

    def __init__(self, build: Callable[P, StreamCall[T]]) -> None:
        self._build = build
        self._sig = _signature(build)
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: AsyncFacade, owner: type[Any]) -> Callable[P, AsyncGenerator[T, None]]: ...

    @overload
    def __get__(self, obj: SyncFacade, owner: type[Any]) -> Callable[P, Iterator[T]]: ...

    def __get__(self, obj: AsyncFacade | SyncFacade | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, client = self._build, obj

        def method(*args: Any, **kwargs: Any) -> Any:
            return client._stream(build(*args, **kwargs))

        _dress(method, build, self._sig)
        return method
