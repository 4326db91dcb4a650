//! Revisions, references, deregistration, deletion, tags and concurrency.

use super::*;

async fn delete_refs(store: &dyn Store, refs: Value) -> EcsResult<Value> {
    delete(store, &ctx(), obj(json!({"taskDefinitions": refs}))).await
}

#[tokio::test]
async fn revisions_count_up_and_are_never_reused() {
    let s = new_store();
    for expected in 1..=3 {
        assert_eq!(reg_ok(s.as_ref(), basic("web")).await["revision"], expected);
    }
    dereg(s.as_ref(), "web:3").await.unwrap();
    assert_eq!(reg_ok(s.as_ref(), basic("web")).await["revision"], 4);
    dereg(s.as_ref(), "web:4").await.unwrap();
    let out = delete_refs(s.as_ref(), json!(["web:4"])).await.unwrap();
    assert_eq!(out["failures"], json!([]));
    let td = reg_ok(s.as_ref(), basic("web")).await;
    assert_eq!(td["revision"], 5);
    assert_eq!(td["taskDefinitionArn"], arn("web:5"));
    // Families are independent.
    assert_eq!(reg_ok(s.as_ref(), basic("api")).await["revision"], 1);
}

#[tokio::test]
async fn a_family_names_its_latest_active_revision() {
    let s = new_store();
    reg_ok(s.as_ref(), basic("web")).await;
    reg_ok(s.as_ref(), basic("web")).await;
    assert_eq!(
        desc(s.as_ref(), "web").await.unwrap()["taskDefinition"]["revision"],
        2
    );
    dereg(s.as_ref(), "web:2").await.unwrap();
    assert_eq!(
        desc(s.as_ref(), "web").await.unwrap()["taskDefinition"]["revision"],
        1
    );
    dereg(s.as_ref(), "web:1").await.unwrap();
    let e = desc(s.as_ref(), "web").await.unwrap_err();
    assert_eq!(code(&e), "ClientException");
    assert_eq!(e.to_string(), "Unable to describe task definition.");
    // Specific revisions stay describable.
    let td = desc(s.as_ref(), "web:2").await.unwrap()["taskDefinition"].clone();
    assert_eq!(td["status"], "INACTIVE");
    assert_eq!(td["deregisteredAt"], json!(1_700_000_000.5));
}

#[tokio::test]
async fn references_by_arn_and_their_failures() {
    let s = new_store();
    reg_ok(s.as_ref(), basic("web")).await;
    let td = desc(s.as_ref(), &arn("web:1")).await.unwrap()["taskDefinition"].clone();
    assert_eq!(td["revision"], 1);
    let bare_arn = desc(s.as_ref(), &arn("web")).await.unwrap();
    assert_eq!(bare_arn["taskDefinition"]["revision"], 1);
    for unknown in [
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
        "arn:aws:ecs:us-east-1:999999999999:task-definition/web:1",
        "arn:aws:ecs:us-east-1:123456789012:cluster/web",
        "web:2",
        "web:0",
        "nope",
        "nope:1",
        "bad name:1",
    ] {
        let e = desc(s.as_ref(), unknown).await.unwrap_err();
        assert_eq!(code(&e), "ClientException", "{unknown}");
        assert_eq!(
            e.to_string(),
            "Unable to describe task definition.",
            "{unknown}"
        );
    }
    let e = desc(s.as_ref(), "web:latest").await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    assert_eq!(e.to_string(), "Invalid revision number. Number: latest");
    let e = describe(s.as_ref(), &ctx(), obj(json!({})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = describe(s.as_ref(), &ctx(), obj(json!({"taskDefinition": 1})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SerializationException");
}

#[tokio::test]
async fn describe_includes_tags_only_when_asked() {
    let s = new_store();
    let mut body = basic("web");
    body["tags"] = json!([{"key": "team", "value": "core"}, {"key": "team", "value": "edge"}]);
    let out = reg(s.as_ref(), body).await.unwrap();
    assert_eq!(out["tags"], json!([{"key": "team", "value": "edge"}]));
    let plain = desc(s.as_ref(), "web:1").await.unwrap();
    assert!(plain.get("tags").is_none());
    let tagged = describe(
        s.as_ref(),
        &ctx(),
        obj(json!({"taskDefinition": "web:1", "include": ["TAGS"]})),
    )
    .await
    .unwrap();
    assert_eq!(tagged["tags"], json!([{"key": "team", "value": "edge"}]));
    let e = describe(
        s.as_ref(),
        &ctx(),
        obj(json!({"taskDefinition": "web:1", "include": ["SETTINGS"]})),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    // Revisions do not share tags.
    reg_ok(s.as_ref(), basic("web")).await;
    let other = describe(
        s.as_ref(),
        &ctx(),
        obj(json!({"taskDefinition": "web:2", "include": ["TAGS"]})),
    )
    .await
    .unwrap();
    assert_eq!(other["tags"], json!([]));
}

#[tokio::test]
async fn deregistration() {
    let s = new_store();
    reg_ok(s.as_ref(), basic("web")).await;
    let e = dereg(s.as_ref(), "web").await.unwrap_err();
    assert_eq!(
        (code(&e), e.to_string().as_str()),
        ("ClientException", "Revision is missing.")
    );
    let e = dereg(s.as_ref(), "web:x").await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = dereg(s.as_ref(), "web:9").await.unwrap_err();
    assert_eq!(
        (code(&e), e.to_string().as_str()),
        ("ClientException", "Unable to describe task definition.")
    );
    let e = dereg(
        s.as_ref(),
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "ClientException");

    let td = dereg(s.as_ref(), &arn("web:1")).await.unwrap()["taskDefinition"].clone();
    assert_eq!(td["status"], "INACTIVE");
    assert_eq!(td["deregisteredAt"], json!(1_700_000_000.5));
    // Again, later: same answer, first deregistration time kept.
    let again = deregister(
        s.as_ref(),
        &later(&ctx(), 60),
        obj(json!({"taskDefinition": "web:1"})),
    )
    .await
    .unwrap();
    assert_eq!(again["taskDefinition"], td);
    assert_eq!(
        desc(s.as_ref(), "web:1").await.unwrap()["taskDefinition"],
        td
    );
}

#[tokio::test]
async fn deletion() {
    let s = new_store();
    reg_ok(s.as_ref(), basic("web")).await;
    reg_ok(s.as_ref(), basic("web")).await;
    dereg(s.as_ref(), "web:1").await.unwrap();

    let out = delete_refs(
        s.as_ref(),
        json!([
            "web:2",
            "web:1",
            "web",
            "web:x",
            "web:7",
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        out["failures"],
        json!([
            {"arn": arn("web:2"), "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again."},
            {"arn": "web", "reason": "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."},
            {"arn": "web:x", "reason": "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."},
            {"arn": "web:7", "reason": "The specified task definition does not exist. Specify a valid account, family, revision and try again."},
            {"arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1", "reason": "The specified task definition does not exist. Specify a valid account, family, revision and try again."},
        ])
    );
    let deleted = out["taskDefinitions"].as_array().unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["status"], "DELETE_IN_PROGRESS");
    assert_eq!(deleted[0]["deleteRequestedAt"], json!(1_700_000_000.5));
    assert_eq!(deleted[0]["deregisteredAt"], json!(1_700_000_000.5));
    // Still describable, and deleting again is harmless.
    assert_eq!(
        desc(s.as_ref(), "web:1").await.unwrap()["taskDefinition"],
        deleted[0]
    );
    let again = delete_refs(s.as_ref(), json!([arn("web:1")]))
        .await
        .unwrap();
    assert_eq!(again["taskDefinitions"][0], deleted[0]);
    // Deregistering a deleted revision does not revive it.
    assert_eq!(
        dereg(s.as_ref(), "web:1").await.unwrap()["taskDefinition"]["status"],
        "DELETE_IN_PROGRESS"
    );

    let e = delete_refs(s.as_ref(), json!([])).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = delete(s.as_ref(), &ctx(), obj(json!({})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let eleven: Vec<String> = (1..=11).map(|i| format!("web:{i}")).collect();
    let e = delete_refs(s.as_ref(), json!(eleven)).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[test]
fn concurrent_registrations_get_distinct_consecutive_revisions() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .build()
        .unwrap();
    rt.block_on(async {
        let s = new_store();
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    reg(s.as_ref(), basic("busy"))
                        .await
                        .map(|o| o["taskDefinition"]["revision"].as_u64())
                })
            })
            .collect();
        let mut revisions = Vec::new();
        for h in handles {
            revisions.push(h.await.unwrap().unwrap().unwrap());
        }
        revisions.sort();
        assert_eq!(revisions, (1..=20).collect::<Vec<u64>>());
        let listed = list(s.as_ref(), &ctx(), obj(json!({"familyPrefix": "busy"})))
            .await
            .unwrap();
        assert_eq!(listed["taskDefinitionArns"].as_array().unwrap().len(), 20);
        assert_eq!(
            desc(s.as_ref(), "busy").await.unwrap()["taskDefinition"]["revision"],
            20
        );
    });
}
