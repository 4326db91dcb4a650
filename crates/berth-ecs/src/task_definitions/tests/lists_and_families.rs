//! ListTaskDefinitions and ListTaskDefinitionFamilies.

use super::*;

async fn list_all(store: &dyn Store, mut body: Value, page_size: usize) -> Vec<String> {
    body["maxResults"] = json!(page_size);
    let mut out = Vec::new();
    loop {
        let page = list(store, &ctx(), obj(body.clone())).await.unwrap();
        let arns = page["taskDefinitionArns"].as_array().unwrap();
        assert!(arns.len() <= page_size);
        out.extend(
            arns.iter()
                .map(|a| a.as_str().unwrap().rsplit('/').next().unwrap().to_string()),
        );
        match page.get("nextToken") {
            Some(t) => body["nextToken"] = t.clone(),
            None => return out,
        }
    }
}

async fn families_all(store: &dyn Store, mut body: Value, page_size: usize) -> Vec<String> {
    body["maxResults"] = json!(page_size);
    let mut out = Vec::new();
    loop {
        let page = list_families(store, &ctx(), obj(body.clone()))
            .await
            .unwrap();
        out.extend(
            page["families"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string()),
        );
        match page.get("nextToken") {
            Some(t) => body["nextToken"] = t.clone(),
            None => return out,
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// a:1..3 (a:2 INACTIVE), a-b:1..2, b:1..2 (b:1 deleted).
async fn populated() -> Arc<dyn Store> {
    let s = new_store();
    for f in ["b", "a", "a-b", "a", "b", "a-b", "a"] {
        reg_ok(s.as_ref(), basic(f)).await;
    }
    dereg(s.as_ref(), "a:2").await.unwrap();
    dereg(s.as_ref(), "b:1").await.unwrap();
    delete(s.as_ref(), &ctx(), obj(json!({"taskDefinitions": ["b:1"]})))
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn list_filters_and_sorts() {
    let s = populated().await;
    let asc = strings(&["a:1", "a:3", "a-b:1", "a-b:2", "b:2"]);
    assert_eq!(list_all(s.as_ref(), json!({}), 100).await, asc);
    assert_eq!(
        list_all(s.as_ref(), json!({"status": "ACTIVE", "sort": "ASC"}), 100).await,
        asc
    );
    let mut desc_order = asc.clone();
    desc_order.reverse();
    assert_eq!(
        list_all(s.as_ref(), json!({"sort": "DESC"}), 100).await,
        desc_order
    );
    assert_eq!(
        list_all(s.as_ref(), json!({"status": "INACTIVE"}), 100).await,
        strings(&["a:2"])
    );
    assert_eq!(
        list_all(s.as_ref(), json!({"status": "DELETE_IN_PROGRESS"}), 100).await,
        strings(&["b:1"])
    );
    // familyPrefix is an exact family, not a prefix.
    assert_eq!(
        list_all(s.as_ref(), json!({"familyPrefix": "a"}), 100).await,
        strings(&["a:1", "a:3"])
    );
    assert_eq!(
        list_all(
            s.as_ref(),
            json!({"familyPrefix": "a", "sort": "DESC"}),
            100
        )
        .await,
        strings(&["a:3", "a:1"])
    );
    assert!(
        list_all(s.as_ref(), json!({"familyPrefix": "zzz"}), 100)
            .await
            .is_empty()
    );
    assert!(
        list_all(s.as_ref(), json!({"familyPrefix": "../a"}), 100)
            .await
            .is_empty()
    );
    let full = list(s.as_ref(), &ctx(), obj(json!({"maxResults": 1})))
        .await
        .unwrap();
    assert_eq!(full["taskDefinitionArns"], json!([arn("a:1")]));
}

#[tokio::test]
async fn list_pages_cover_everything_once() {
    let s = populated().await;
    for size in 1..=6 {
        assert_eq!(
            list_all(s.as_ref(), json!({}), size).await,
            strings(&["a:1", "a:3", "a-b:1", "a-b:2", "b:2"]),
            "{size}"
        );
        assert_eq!(
            list_all(s.as_ref(), json!({"sort": "DESC"}), size).await,
            strings(&["b:2", "a-b:2", "a-b:1", "a:3", "a:1"]),
            "{size}"
        );
    }
}

#[tokio::test]
async fn list_resumes_past_a_revision_that_left_the_status() {
    let s = populated().await;
    let first = list(s.as_ref(), &ctx(), obj(json!({"maxResults": 2})))
        .await
        .unwrap();
    assert_eq!(first["taskDefinitionArns"], json!([arn("a:1"), arn("a:3")]));
    dereg(s.as_ref(), "a:3").await.unwrap();
    let token = first["nextToken"].clone();
    let rest = list(s.as_ref(), &ctx(), obj(json!({"nextToken": token})))
        .await
        .unwrap();
    assert_eq!(
        rest["taskDefinitionArns"],
        json!([arn("a-b:1"), arn("a-b:2"), arn("b:2")])
    );
}

#[tokio::test]
async fn list_input_errors() {
    let s = populated().await;
    for body in [
        json!({"status": "DELETED"}),
        json!({"sort": "UP"}),
        json!({"maxResults": 0}),
        json!({"maxResults": 101}),
        json!({"nextToken": "garbage!"}),
    ] {
        let e = list(s.as_ref(), &ctx(), obj(body.clone()))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{body}");
    }
    // A token cut for one order is refused for another.
    let asc = list(s.as_ref(), &ctx(), obj(json!({"maxResults": 1})))
        .await
        .unwrap();
    let e = list(
        s.as_ref(),
        &ctx(),
        obj(json!({"sort": "DESC", "nextToken": asc["nextToken"]})),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = list(s.as_ref(), &ctx(), obj(json!({"maxResults": "5"})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SerializationException");
}

#[tokio::test]
async fn families_by_status_and_prefix() {
    let s = new_store();
    for f in ["web", "web-old", "worker", "api"] {
        reg_ok(s.as_ref(), basic(f)).await;
    }
    reg_ok(s.as_ref(), basic("web")).await;
    dereg(s.as_ref(), "web:1").await.unwrap();
    dereg(s.as_ref(), "web-old:1").await.unwrap();
    dereg(s.as_ref(), "worker:1").await.unwrap();
    delete(
        s.as_ref(),
        &ctx(),
        obj(json!({"taskDefinitions": ["worker:1"]})),
    )
    .await
    .unwrap();

    let all = strings(&["api", "web", "web-old", "worker"]);
    assert_eq!(families_all(s.as_ref(), json!({}), 100).await, all);
    assert_eq!(
        families_all(s.as_ref(), json!({"status": "ALL"}), 100).await,
        all
    );
    assert_eq!(
        families_all(s.as_ref(), json!({"status": "ACTIVE"}), 100).await,
        strings(&["api", "web"])
    );
    assert_eq!(
        families_all(s.as_ref(), json!({"status": "INACTIVE"}), 100).await,
        strings(&["web-old", "worker"])
    );
    assert_eq!(
        families_all(s.as_ref(), json!({"familyPrefix": "w"}), 100).await,
        strings(&["web", "web-old", "worker"])
    );
    assert_eq!(
        families_all(
            s.as_ref(),
            json!({"familyPrefix": "web", "status": "INACTIVE"}),
            100
        )
        .await,
        strings(&["web-old"])
    );
    assert!(
        families_all(s.as_ref(), json!({"familyPrefix": "x"}), 100)
            .await
            .is_empty()
    );
    for size in 1..=4 {
        assert_eq!(
            families_all(s.as_ref(), json!({}), size).await,
            all,
            "{size}"
        );
    }
    // Re-registering brings a family back to ACTIVE.
    reg_ok(s.as_ref(), basic("web-old")).await;
    assert_eq!(
        families_all(s.as_ref(), json!({"status": "ACTIVE"}), 100).await,
        strings(&["api", "web", "web-old"])
    );

    for body in [
        json!({"status": "DELETE_IN_PROGRESS"}),
        json!({"maxResults": 1000}),
    ] {
        let e = list_families(s.as_ref(), &ctx(), obj(body))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }
}
