"""The simulated microservice estate: services, their operations and call graph, and context tables.

Pure data plus small builders; `model.py` turns it into encoded span templates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

GATEWAY = "gateway"  # sends request metrics only: lets SLIs from metrics be tested without spans


@dataclass(frozen=True)
class Call:
    """An HTTP call to another service's operation: a CLIENT span here, a SERVER span there."""

    service: str
    operation: str


@dataclass(frozen=True)
class Db:
    system: str  # db.system: postgresql, mongodb, elasticsearch, redis
    operation: str
    collection: str
    query: str
    mean_ms: float


@dataclass(frozen=True)
class Work:
    """In-process work worth its own INTERNAL span."""

    name: str
    mean_ms: float


Step = Call | Db | Work


@dataclass(frozen=True)
class Operation:
    method: str
    route: str
    self_ms: float
    steps: tuple[Step, ...] = ()
    weight: float = 0.0  # > 0 only for entry operations of the front service

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    team: str
    tier: str
    language: str
    version: str
    operations: tuple[Operation, ...]
    latency_slo_ms: int = 500


def _cache(op: str, key: str) -> Db:
    return Db("redis", op, key.split(":")[0], f"{op} {key}", 0.4)


def _sql(op: str, table: str, query: str, mean_ms: float = 2.0) -> Db:
    return Db("postgresql", op, table, query, mean_ms)


_SESSION = Call("auth", "GET /v1/session")

# In the order `--services N` takes them: every service's callers come before it.
SERVICE_SPECS: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "frontend",
        "team-web",
        "tier-1",
        "nodejs",
        "2.14.0",
        (
            Operation(
                "GET",
                "/",
                4.0,
                (
                    Call("catalog", "GET /v1/products"),
                    Call("recommendation", "GET /v1/recommendations"),
                    Call("ad", "GET /v1/ads"),
                    Work("render home", 2.0),
                ),
                weight=12,
            ),
            Operation(
                "GET",
                "/api/products/{id}",
                3.0,
                (
                    _SESSION,
                    Call("catalog", "GET /v1/products/{id}"),
                    Call("pricing", "GET /v1/prices/{id}"),
                    Call("review", "GET /v1/reviews/{id}"),
                    Call("recommendation", "GET /v1/recommendations"),
                    Call("ad", "GET /v1/ads"),
                ),
                weight=35,
            ),
            Operation(
                "GET",
                "/api/search",
                3.0,
                (_SESSION, Call("search", "GET /v1/search"), Call("ad", "GET /v1/ads")),
                weight=20,
            ),
            Operation(
                "GET",
                "/api/cart",
                2.5,
                (_SESSION, Call("cart", "GET /v1/carts/{id}"), Call("currency", "GET /v1/rates")),
                weight=10,
            ),
            Operation(
                "POST",
                "/api/cart/items",
                3.0,
                (_SESSION, Call("cart", "POST /v1/carts/{id}/items")),
                weight=10,
            ),
            Operation(
                "POST", "/api/checkout", 5.0, (_SESSION, Call("checkout", "POST /v1/orders")), weight=8
            ),
            Operation("POST", "/api/login", 2.0, (Call("auth", "POST /v1/sessions"),), weight=5),
        ),
        latency_slo_ms=800,
    ),
    ServiceSpec(
        "checkout",
        "team-orders",
        "tier-1",
        "java",
        "3.2.1",
        (
            Operation(
                "POST",
                "/v1/orders",
                6.0,
                (
                    Call("cart", "GET /v1/carts/{id}"),
                    Call("pricing", "POST /v1/quotes"),
                    Call("payment", "POST /v1/payments"),
                    Call("inventory", "POST /v1/reservations"),
                    Call("shipping", "POST /v1/shipments"),
                    _sql(
                        "INSERT",
                        "orders",
                        "INSERT INTO orders (id, user_id, total, currency) VALUES ($1, $2, $3, $4)",
                    ),
                    Call("notification", "POST /v1/notifications"),
                    Call("cart", "DELETE /v1/carts/{id}"),
                ),
            ),
        ),
        latency_slo_ms=1500,
    ),
    ServiceSpec(
        "payment",
        "team-payments",
        "tier-1",
        "go",
        "1.9.4",
        (
            Operation(
                "POST",
                "/v1/payments",
                4.0,
                (
                    Work("fraud check", 8.0),
                    _sql(
                        "INSERT",
                        "payments",
                        "INSERT INTO payments (order_id, amount, status) VALUES ($1, $2, $3)",
                    ),
                    Work("authorize card", 35.0),
                ),
            ),
        ),
        latency_slo_ms=1000,
    ),
    ServiceSpec(
        "cart",
        "team-orders",
        "tier-2",
        "python",
        "1.22.0",
        (
            Operation("GET", "/v1/carts/{id}", 1.5, (_cache("GET", "cart:{id}"),)),
            Operation(
                "POST",
                "/v1/carts/{id}/items",
                2.0,
                (
                    Call("catalog", "GET /v1/products/{id}"),
                    Call("inventory", "GET /v1/stock/{id}"),
                    _cache("SET", "cart:{id}"),
                ),
            ),
            Operation("DELETE", "/v1/carts/{id}", 1.0, (_cache("DEL", "cart:{id}"),)),
        ),
    ),
    ServiceSpec(
        "catalog",
        "team-catalog",
        "tier-2",
        "java",
        "5.0.3",
        (
            Operation(
                "GET",
                "/v1/products",
                2.0,
                (
                    _cache("GET", "products:featured"),
                    _sql(
                        "SELECT",
                        "products",
                        "SELECT id, name, price FROM products WHERE featured = true LIMIT $1",
                        6.0,
                    ),
                ),
            ),
            Operation(
                "GET",
                "/v1/products/{id}",
                1.5,
                (
                    _cache("GET", "product:{id}"),
                    _sql("SELECT", "products", "SELECT id, name, price, stock FROM products WHERE id = $1"),
                ),
            ),
        ),
        latency_slo_ms=300,
    ),
    ServiceSpec(
        "shipping",
        "team-logistics",
        "tier-2",
        "go",
        "0.18.2",
        (
            Operation(
                "POST",
                "/v1/shipments",
                3.0,
                (
                    Work("rate shopping", 6.0),
                    _sql(
                        "INSERT",
                        "shipments",
                        "INSERT INTO shipments (order_id, carrier, eta) VALUES ($1, $2, $3)",
                    ),
                ),
            ),
        ),
    ),
    ServiceSpec(
        "auth",
        "team-identity",
        "tier-1",
        "go",
        "4.3.0",
        (
            Operation("GET", "/v1/session", 0.8, (_cache("GET", "session:{id}"),)),
            Operation(
                "POST",
                "/v1/sessions",
                2.0,
                (
                    _sql("SELECT", "users", "SELECT id, password_hash FROM users WHERE login = $1"),
                    Work("verify password", 25.0),
                    _cache("SET", "session:{id}"),
                ),
            ),
        ),
        latency_slo_ms=200,
    ),
    ServiceSpec(
        "search",
        "team-catalog",
        "tier-2",
        "python",
        "2.7.5",
        (
            Operation(
                "GET",
                "/v1/search",
                4.0,
                (
                    Db(
                        "elasticsearch",
                        "search",
                        "products",
                        '{"query":{"match":{"name":"?"}},"size":20}',
                        18.0,
                    ),
                    _cache("GET", "search:{id}"),
                ),
            ),
        ),
        latency_slo_ms=600,
    ),
    ServiceSpec(
        "inventory",
        "team-logistics",
        "tier-2",
        "java",
        "1.4.0",
        (
            Operation(
                "GET",
                "/v1/stock/{id}",
                1.0,
                (_sql("SELECT", "stock", "SELECT quantity FROM stock WHERE sku = $1"),),
            ),
            Operation(
                "POST",
                "/v1/reservations",
                2.0,
                (_sql("UPDATE", "stock", "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2", 3.0),),
            ),
        ),
    ),
    ServiceSpec(
        "pricing",
        "team-catalog",
        "tier-2",
        "go",
        "2.0.1",
        (
            Operation("GET", "/v1/prices/{id}", 0.8, (_cache("GET", "price:{id}"),)),
            Operation(
                "POST", "/v1/quotes", 2.0, (Call("currency", "GET /v1/rates"), Work("tax calculation", 3.0))
            ),
        ),
    ),
    ServiceSpec(
        "recommendation",
        "team-discovery",
        "tier-3",
        "python",
        "0.9.12",
        (
            Operation(
                "GET",
                "/v1/recommendations",
                3.0,
                (Call("catalog", "GET /v1/products"), Work("rank candidates", 10.0)),
            ),
        ),
    ),
    ServiceSpec(
        "notification",
        "team-engagement",
        "tier-3",
        "nodejs",
        "1.2.0",
        (
            Operation(
                "POST",
                "/v1/notifications",
                1.5,
                (
                    _sql("INSERT", "outbox", "INSERT INTO outbox (topic, payload) VALUES ($1, $2)"),
                    Call("email", "POST /v1/messages"),
                ),
            ),
        ),
    ),
    ServiceSpec(
        "review",
        "team-discovery",
        "tier-3",
        "nodejs",
        "3.1.4",
        (
            Operation(
                "GET",
                "/v1/reviews/{id}",
                1.5,
                (Db("mongodb", "find", "reviews", '{"find":"reviews","filter":{"product_id":"?"}}', 4.0),),
            ),
        ),
    ),
    ServiceSpec(
        "currency",
        "team-payments",
        "tier-2",
        "go",
        "1.0.7",
        (Operation("GET", "/v1/rates", 0.5, (_cache("GET", "rates:latest"),)),),
    ),
    ServiceSpec(
        "ad",
        "team-growth",
        "tier-3",
        "java",
        "0.3.1",
        (Operation("GET", "/v1/ads", 1.0, (Work("select ads", 3.0),)),),
    ),
    ServiceSpec(
        "email",
        "team-engagement",
        "tier-3",
        "python",
        "2.2.2",
        (Operation("POST", "/v1/messages", 2.0, (Work("render template", 3.0), Work("smtp send", 20.0))),),
    ),
)

GATEWAY_SPEC = ServiceSpec(GATEWAY, "team-platform", "tier-1", "cpp", "1.31.2", (), latency_slo_ms=800)


def _extra_service(index: int) -> ServiceSpec:
    """Services beyond the named ones are leaves, hung off the entry operations in turn."""
    return ServiceSpec(
        f"svc-{index + 1:02d}",
        "team-platform",
        "tier-3",
        "go",
        "1.0.0",
        (Operation("GET", "/v1/items/{id}", 1.0, (_cache("GET", f"svc{index + 1}:{{id}}"),)),),
    )


def traced_services(count: int) -> list[ServiceSpec]:
    """The first `count` services, with calls to absent services dropped."""
    specs = list(SERVICE_SPECS[:count])
    entry_ops = list(specs[0].operations)
    for index in range(len(SERVICE_SPECS), count):
        extra = _extra_service(index)
        slot = index % len(entry_ops)
        entry_ops[slot] = replace(
            entry_ops[slot], steps=(*entry_ops[slot].steps, Call(extra.name, extra.operations[0].key))
        )
        specs.append(extra)
    specs[0] = replace(specs[0], operations=tuple(entry_ops))
    present = {spec.name for spec in specs}
    return [
        replace(
            spec,
            operations=tuple(
                replace(
                    op, steps=tuple(s for s in op.steps if not isinstance(s, Call) or s.service in present)
                )
                for op in spec.operations
            ),
        )
        for spec in specs
    ]


def service_names(count: int, metrics_only_service: bool) -> list[str]:
    names = [spec.name for spec in SERVICE_SPECS[:count]]
    names += [f"svc-{i + 1:02d}" for i in range(len(SERVICE_SPECS), count)]
    return [*names, GATEWAY] if metrics_only_service else names


# ---- context tables -------------------------------------------------------------------------------

_TENANTS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture",
    "massive",
    "oscorp",
    "vandelay",
    "dunder",
    "pied-piper",
    "gringotts",
    "monarch",
    "nakatomi",
)
_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1")
_PLANS = ("free", "pro", "enterprise")


@dataclass(frozen=True)
class User:
    id: str
    tenant: str
    plan: str
    region: str


def tenants(count: int) -> list[str]:
    return [_TENANTS[i] if i < len(_TENANTS) else f"tenant-{i + 1:03d}" for i in range(count)]


def build_users(seed: int, count: int, tenant_count: int) -> list[User]:
    rng = random.Random(f"users/{seed}")
    names = tenants(tenant_count)
    # A plan belongs to the tenant, so every user of a tenant shares it.
    plans = {t: rng.choices(_PLANS, weights=(6, 3, 1))[0] for t in names}
    users = []
    for _ in range(count):
        tenant = rng.choice(names)
        users.append(User(f"user-{rng.getrandbits(40):010x}", tenant, plans[tenant], rng.choice(_REGIONS)))
    return users


def catalog_entry(spec: ServiceSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "owner": spec.team,
        "tier": spec.tier,
        "runbook": f"https://runbooks.example.com/services/{spec.name}",
        "dashboard": f"https://grafana.example.com/d/{spec.name}",
        "route": f"{spec.team}-oncall" if spec.tier == "tier-1" else f"{spec.team}-tickets",
    }
    if spec.tier == "tier-1":  # SLO overrides; other services use the pipeline's slo_defaults
        entry["slo"] = {
            "availability": 99.9,
            "latency": {"threshold_ms": spec.latency_slo_ms, "objective": 99.0},
        }
    return entry
