"""The description of a release made by a deploy without -m: what changed, in a few words."""

from __future__ import annotations

from mypaas.domain import AppSpec, BuildSpec, ProjectFiles, ServiceSpec
from mypaas.manager.describe import MAX_LEN, UNCHANGED, describe_deploy


def spec(**services: ServiceSpec) -> AppSpec:
    return AppSpec(services=services)


def svc(name: str, image: str = "web:1", **fields: object) -> ServiceSpec:
    return ServiceSpec.model_validate({"name": name, "image": image, **fields})


def test_first_deploy_names_each_service_and_its_image() -> None:
    first = spec(web=svc("web"), worker=svc("worker", build=BuildSpec(context="worker")))
    assert describe_deploy(None, first, "a") == "First deploy: web web:1; worker (built)"


def test_images_env_keys_and_services_added_and_removed() -> None:
    old = spec(web=svc("web", environment={"A": "1", "B": "2"}), cron=svc("cron"))
    new = spec(
        web=svc("web", "web:2", environment={"A": "1", "B": "3", "C": "4"}),
        worker=svc("worker", "jobs:1"),
    )
    assert describe_deploy(old, new, "a") == "+worker jobs:1; web image web:2, env +C ~B; -cron"


def test_files_command_and_a_new_digest_of_the_same_tag() -> None:
    conf = ProjectFiles(source="nginx.conf", target="/etc/nginx.conf", digest="sha256:a")
    html = ProjectFiles(source="html", target="/www", digest="sha256:b")
    old = spec(web=svc("web", "mypaas-a/web:files-1", project_files=[conf, html], image_id="x"))
    new_html = html.model_copy(update={"digest": "sha256:c"})
    new = spec(web=svc("web", "mypaas-a/web:files-2", project_files=[conf, new_html], image_id="y"))
    assert describe_deploy(old, new, "a") == "web files html"
    moved = spec(web=svc("web", image_id="1"))
    assert describe_deploy(moved, spec(web=svc("web", image_id="2", command=["sh"])), "a") == (
        "web image web:1 (new digest), command"
    )


def test_nothing_changed_and_long_descriptions() -> None:
    same = spec(web=svc("web"))
    assert describe_deploy(same, same, "a") == UNCHANGED
    many = {f"service{n}": svc(f"service{n}") for n in range(30)}
    text = describe_deploy(same, spec(**many), "a")
    assert len(text) == MAX_LEN and text.endswith("…")


def test_images_mypaas_built_are_rebuilt_and_a_users_mypaas_named_image_is_named() -> None:
    built = spec(web=svc("web", "mypaas-a/web:0123abcd", image_id="1"))
    rebuilt = spec(web=svc("web", "mypaas-a/web:4567ef01", image_id="2"))
    assert describe_deploy(built, rebuilt, "a") == "web rebuilt"
    assert describe_deploy(built, spec(web=svc("web", "mypaas-test/web:v2")), "a") == (
        "web image mypaas-test/web:v2"
    )
