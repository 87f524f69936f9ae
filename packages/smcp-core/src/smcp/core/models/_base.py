from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, StringConstraints, model_serializer

#: Names, office ids and request ids are bounded so a huge string is a 400, not a memory problem.
MAX_NAME_LENGTH = 256
MAX_ID_LENGTH = 1024

Name = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
Ident = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH)]


class WireModel(BaseModel):
    """Base of every payload model.

    Serialisation rule: an optional field (one with a default) whose value is ``None`` is
    omitted from the wire, because the official server rejects ``null`` where a key is
    optional-but-not-nullable. Fields listed in ``__keep_none__`` are written as ``null``
    (the official peers send them that way), and required fields are always present.
    Unknown keys are ignored on input.
    """

    # Schemas are built on first use (once per class, never per call) to keep imports fast;
    # servers call smcp.core.wire.warm_up() at start-up so the first request pays nothing.
    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, serialize_by_alias=True, defer_build=True
    )

    __keep_none__: ClassVar[frozenset[str]] = frozenset()
    __omit_none__: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__omit_none__ = tuple(
            field.serialization_alias or field.alias or name
            for name, field in cls.model_fields.items()
            if not field.is_required() and field.default is None and name not in cls.__keep_none__
        )

    @model_serializer(mode="wrap")
    def _drop_optional_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.__omit_none__:
                if key in data and data[key] is None:
                    del data[key]
        return data


class AgentCallData(WireModel):
    """Fields every Agent request carries."""

    agent: Name
    req_id: Ident


class ComputerRequest(AgentCallData):
    """Base of every ``client:*`` request: it names the target Computer."""

    computer: Name
