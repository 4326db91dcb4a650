use super::*;
use crate::model::InstanceView;

fn instance() -> InstanceView {
    let mut i = InstanceView::new("ci-1", 2048, 4096)
        .with_attribute("ecs.instance-type", "t2.micro")
        .with_attribute("ecs.availability-zone", "us-east-1a")
        .with_attribute("ecs.os-type", "linux")
        .with_attribute("stack", "prod")
        .with_attribute("cores", "16")
        .with_task("web", "service:production")
        .with_task("batch", "family:batch");
    i.attributes.insert("gpu".to_owned(), None);
    i.ec2_instance_id = Some("i-abcd1234".to_owned());
    i.agent_version = Some("1.14.5".to_owned());
    i
}

#[test]
fn evaluates_valid_expressions() {
    let inst = instance();
    let table: &[(&str, bool)] = &[
        // Equality, both spellings.
        ("attribute:ecs.instance-type == t2.micro", true),
        ("attribute:ecs.instance-type equals t2.micro", true),
        ("attribute:ecs.instance-type == t2.small", false),
        ("attribute:ecs.instance-type != t2.small", true),
        ("attribute:ecs.instance-type not_equals t2.micro", false),
        ("attribute:ecs.instance-type==t2.micro", true),
        ("attribute:ecs.instance-type == 't2.micro'", true),
        ("attribute:ecs.instance-type == \"t2.micro\"", true),
        // Missing attributes: positive fails, negative holds.
        ("attribute:missing == x", false),
        ("attribute:missing != x", true),
        ("attribute:missing exists", false),
        ("attribute:missing !exists", true),
        ("attribute:missing not_exists", true),
        // Present without a value.
        ("attribute:gpu exists", true),
        ("attribute:gpu == ''", false),
        ("attribute:stack exists", true),
        // Lists.
        (
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            true,
        ),
        (
            "attribute:ecs.availability-zone in [us-east-1b,us-east-1c]",
            false,
        ),
        ("attribute:ecs.availability-zone not_in [us-east-1b]", true),
        ("attribute:ecs.availability-zone !in [us-east-1a]", false),
        ("attribute:ecs.availability-zone in []", false),
        ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true),
        ("ec2InstanceId == i-abcd1234", true),
        // Patterns (Java regex, whole value).
        ("attribute:ecs.instance-type =~ t2.*", true),
        ("attribute:ecs.instance-type matches t2.*", true),
        ("attribute:ecs.instance-type =~ g2.*", false),
        ("attribute:ecs.instance-type =~ t2", false),
        ("attribute:ecs.instance-type !~ g2.*", true),
        ("attribute:ecs.instance-type not_matches t2.*", false),
        (
            "attribute:ecs.instance-type =~ 't[0-9]\\.(micro|small)'",
            true,
        ),
        ("attribute:ecs.instance-type =~ (?i)T2\\.MICRO", true),
        ("(attribute:ecs.instance-type =~ (t2|m5).*)", true),
        ("ec2InstanceId =~ i-[a-f0-9]{8}", true),
        // Comparisons.
        ("attribute:cores > 8", true),
        ("attribute:cores >= 16", true),
        ("attribute:cores < 16", false),
        ("attribute:cores less_than_equal 16", true),
        ("agentVersion < 1.14.6", true),
        ("agentVersion < 1.9.0", false),
        ("agentVersion >= 1.14.5", true),
        ("agentVersion greater_than 1.2", true),
        // Agent and tasks.
        ("agentConnected == true", true),
        ("agentConnected != true", false),
        ("agentConnected in [false]", false),
        ("runningTasksCount == 2", true),
        ("runningTasksCount > 1", true),
        ("runningTasksCount < 2", false),
        ("runningTasksCount <= 2", true),
        ("runningTasksCount != 0", true),
        ("task:group == service:production", true),
        ("task:group == database", false),
        ("task:group != database", true),
        ("task:group != service:production", false),
        ("task:group in [family:batch, x]", true),
        ("task:group =~ service:.*", true),
        ("task:group exists", true),
        // Compound expressions.
        (
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
            true,
        ),
        (
            "attribute:ecs.instance-type =~ t2.* && attribute:ecs.availability-zone == us-east-1d",
            false,
        ),
        (
            "attribute:ecs.instance-type == x or attribute:stack == prod",
            true,
        ),
        (
            "attribute:ecs.instance-type == x || attribute:stack == dev",
            false,
        ),
        ("not(task:group == database)", true),
        ("not (task:group == service:production)", false),
        ("!attribute:stack exists", false),
        ("! (attribute:stack == dev)", true),
        (
            "(attribute:stack == dev or attribute:stack == prod) and runningTasksCount > 0",
            true,
        ),
        (
            "attribute:stack == dev or attribute:stack == prod and runningTasksCount > 5",
            false,
        ),
        (
            "attribute:stack == prod or attribute:stack == dev and runningTasksCount > 5",
            true,
        ),
        ("not not attribute:stack exists", true),
        ("attribute:stack == prod AND attribute:cores == 16", true),
        ("  attribute:stack   ==   prod  ", true),
    ];
    for (text, want) in table {
        let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(expr.evaluate(&inst), *want, "{text}");
        // Display gives text that parses back to the same expression.
        let printed = expr.to_string();
        assert_eq!(
            parse(&printed).as_ref(),
            Ok(&expr),
            "{text} printed as {printed}"
        );
    }
}

#[test]
fn disconnected_agent() {
    let mut inst = instance();
    inst.agent_connected = false;
    assert!(parse("agentConnected == false").unwrap().evaluate(&inst));
    assert!(!parse("agentConnected == true").unwrap().evaluate(&inst));
}

#[test]
fn rejects_invalid_expressions() {
    let table: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        ("attribute:x", "expected an operator"),
        ("attribute:x ==", "expected a value"),
        ("attribute:x == a b", "expected 'and', 'or'"),
        ("attribute: == a", "unknown subject"),
        ("bogus == a", "unknown subject"),
        ("registeredAt < 2018-02-13", "not supported"),
        ("attribute:x in a", "expected '['"),
        ("attribute:x in [a b]", "expected ',' or ']'"),
        (
            "attribute:x in [a,",
            "expected a value in the argument list",
        ),
        ("attribute:x == 'open", "closing quote"),
        ("(attribute:x exists", "expected ')'"),
        ("attribute:x exists)", "expected 'and', 'or'"),
        ("attribute:x exists and", "expected a subject"),
        ("and attribute:x exists", "unknown subject"),
        ("attribute:x =~ *", "dangling"),
        ("attribute:x =~ 'a('", "unclosed group"),
        ("attribute:x =~ '[a-'", "unclosed character class"),
        ("attribute:x =~ '[z-a]'", "illegal character range"),
        ("attribute:x =~ 'a{2'", "illegal repetition"),
        ("attribute:x =~ 'a++'", "possessive"),
        ("attribute:x =~ '\\bword'", "unsupported"),
        ("agentConnected == maybe", "expected true or false"),
        (
            "agentConnected > true",
            "cannot be used with agentConnected",
        ),
        (
            "agentConnected exists",
            "cannot be used with agentConnected",
        ),
        ("runningTasksCount == many", "expected a whole number"),
        (
            "runningTasksCount in [1]",
            "cannot be used with runningTasksCount",
        ),
        (
            "runningTasksCount =~ 1",
            "cannot be used with runningTasksCount",
        ),
        ("ec2InstanceId > i-1", "cannot be used with ec2InstanceId"),
        ("agentVersion exists", "cannot be used with agentVersion"),
        ("task:group > a", "cannot be used with task:group"),
        ("attribute:x == a &&", "expected a subject"),
        (
            "attribute:x == a ||| attribute:y exists",
            "expected a subject",
        ),
    ];
    for (text, want) in table {
        match parse(text) {
            Ok(e) => panic!("{text:?} parsed as {e:?}"),
            Err(err) => {
                let msg = err.to_string();
                assert!(
                    msg.contains(want),
                    "{text:?}: {msg:?} does not mention {want:?}"
                );
            }
        }
    }
}

#[test]
fn rejects_too_long_and_too_deep() {
    let long = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_LEN));
    assert!(matches!(parse(&long), Err(QueryError::TooLong { .. })));
    let deep = format!(
        "{}attribute:x exists{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(matches!(parse(&deep), Err(QueryError::TooDeep { .. })));
    let nots = format!("{}attribute:x exists", "not ".repeat(MAX_DEPTH + 1));
    assert!(matches!(parse(&nots), Err(QueryError::TooDeep { .. })));
    let ok = format!(
        "{}attribute:x exists{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(parse(&ok).is_ok());
}

#[test]
fn errors_carry_positions() {
    assert_eq!(
        parse("attribute:x == a and bogus == b"),
        Err(QueryError::UnknownSubject {
            at: 21,
            subject: "bogus".to_owned()
        })
    );
}

#[test]
fn precedence_and_structure() {
    let e = parse("attribute:a exists or attribute:b exists and not attribute:c exists").unwrap();
    match e {
        Expr::Or(_, rhs) => {
            assert!(matches!(*rhs, Expr::And(_, ref r) if matches!(**r, Expr::Not(_))))
        }
        other => panic!("{other:?}"),
    }
    assert!(parse("runningTasksCount == 0").unwrap().is_dynamic());
    assert!(
        parse("attribute:a exists and not task:group == x")
            .unwrap()
            .is_dynamic()
    );
    assert!(
        !parse("attribute:a exists or ec2InstanceId == i-1")
            .unwrap()
            .is_dynamic()
    );
}

#[test]
fn patterns() {
    let table: &[(&str, &str, bool)] = &[
        ("t2.*", "t2.micro", true),
        ("t2.*", "xt2.micro", false),
        ("t2\\..*", "t2x", false),
        ("a|b|c", "b", true),
        ("a|b|c", "ab", false),
        ("(ab)+", "ababab", true),
        ("(ab)+", "", false),
        ("(ab)*", "", true),
        ("a?b", "b", true),
        ("a{2,3}", "aaa", true),
        ("a{2,3}", "aaaa", false),
        ("a{2,}", "aaaaa", true),
        ("a{2}", "a", false),
        ("[^0-9]+", "abc", true),
        ("[^0-9]+", "ab1", false),
        ("\\d+\\.\\d+", "12.5", true),
        ("\\w+-\\w+", "us-east", true),
        ("\\s", " ", true),
        ("[a\\-z]+", "a-z", true),
        ("[\\d.]+", "1.2.3", true),
        ("^abc$", "abc", true),
        (".*", "", true),
        (
            "(a*)*b",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
            false,
        ),
        ("(?:x|y)z", "yz", true),
        ("a.*?b", "axxb", true),
        ("(?i)ab[c-d]", "ABD", true),
        ("é.", "éa", true),
    ];
    for (pat, text, want) in table {
        let p = Pattern::new(pat).unwrap_or_else(|e| panic!("{pat}: {e}"));
        assert_eq!(p.is_match(text), *want, "{pat} ~ {text}");
    }
    for bad in [
        "*", "+a", "?", "a)", "(a", "[", "[]", "a{3,2}", "a{1001}", "\\", "(?=a)", "[a&&b]",
        "[[a]]",
    ] {
        assert!(Pattern::new(bad).is_err(), "{bad} should not compile");
    }
    assert_eq!(
        Pattern::new("(a{100}){200}").err(),
        Some(PatternError::TooLarge)
    );
}
