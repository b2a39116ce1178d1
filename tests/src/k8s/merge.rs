//! Kubernetes' strategic merge, as far as the kustomize components use it.

use serde_norway::Value;

/// The key a list of this field merges by (Kubernetes' `patchMergeKey`); other lists are
/// replaced.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// Applies a strategic-merge `patch` to `base`: maps merge key by key (`null` deletes), the
/// lists of [`merge_key`] merge item by item on their key, other lists and scalars are
/// replaced.
pub fn strategic_merge(base: &mut Value, patch: &Value) {
    merge_field(base, patch, "");
}

fn merge_field(base: &mut Value, patch: &Value, field: &str) {
    match (base, patch, merge_key(field)) {
        (Value::Mapping(b), Value::Mapping(p), _) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    merge_field(existing, v, k.as_str().unwrap_or_default());
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(p), Some(key)) => {
            for item in p {
                let id = item.get(key);
                match b.iter_mut().find(|x| id.is_some() && x.get(key) == id) {
                    Some(existing) => merge_field(existing, item, ""),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, p, _) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).expect("yaml")
    }

    #[test]
    fn a_patch_merges_onto_a_pod_template() {
        let mut base = yaml(
            r#"
kind: ReplicationController
metadata: {name: w, labels: {component: w}}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: flint:0.1.0
          args: [a, b]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          ports:
            - {name: http, containerPort: 8081}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
          resources:
            limits: {cpu: "2", memory: 2560Mi}
        - name: sidecar
          image: other
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 1Gi}
"#,
        );
        let patch = yaml(
            r#"
kind: ReplicationController
metadata: {name: w, labels: null}
spec:
  template:
    spec:
      containers:
        - name: worker
          image: flint:0.1.0-spark3.5
          args: [c]
          env:
            - {name: B, value: "20"}
            - {name: C, value: "3"}
          ports:
            - {containerPort: 8081, protocol: TCP}
          volumeMounts:
            - {name: scratch, mountPath: /tmp}
          resources:
            limits: {memory: 4Gi}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 8Gi}
        - name: extra
          emptyDir: {}
"#,
        );
        strategic_merge(&mut base, &patch);
        let want = yaml(
            r#"
kind: ReplicationController
metadata: {name: w}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: flint:0.1.0-spark3.5
          args: [c]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "20"}
            - {name: C, value: "3"}
          ports:
            - {name: http, containerPort: 8081, protocol: TCP}
          volumeMounts:
            - {name: scratch, mountPath: /tmp}
          resources:
            limits: {cpu: "2", memory: 4Gi}
        - name: sidecar
          image: other
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 8Gi}
        - name: extra
          emptyDir: {}
"#,
        );
        assert_eq!(base, want);
    }

    #[test]
    fn scalars_and_keyless_lists_are_replaced() {
        let mut base = yaml("{a: 1, list: [1, 2], items: [{name: x}], nested: {b: [x]}}");
        strategic_merge(
            &mut base,
            &yaml("{a: two, list: [3], items: [{name: y}], nested: {b: [y]}}"),
        );
        assert_eq!(
            base,
            yaml("{a: two, list: [3], items: [{name: y}], nested: {b: [y]}}")
        );
        // Items without the merge key are appended.
        let mut base = yaml("{env: [{name: A}]}");
        strategic_merge(&mut base, &yaml("{env: [{value: x}]}"));
        assert_eq!(base, yaml("{env: [{name: A}, {value: x}]}"));
    }
}
